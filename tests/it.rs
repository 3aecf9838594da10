//! The one integration-test binary (ripgrep style). Helpers start a real
//! `docker-registry` per test on 127.0.0.1, push images built in memory,
//! run the `pulltar` binary and prove its archives with skopeo, podman and
//! dockerd. Missing tools fail the test with the apt-get line to run:
//! `scripts/test` installs them all.

#[path = "it/util.rs"]
mod util;

#[path = "it/registry.rs"]
mod registry;

#[path = "it/images.rs"]
mod images;

#[path = "it/loaders.rs"]
mod loaders;

#[path = "it/oci_check.rs"]
mod oci_check;

#[path = "it/dockerd.rs"]
mod dockerd;

#[path = "it/token.rs"]
mod token;

#[path = "it/pull.rs"]
mod pull;

#[path = "it/failures.rs"]
mod failures;

#[path = "it/cli.rs"]
mod cli;

#[path = "it/docker_load.rs"]
mod docker_load;

#[path = "it/selfcheck.rs"]
mod selfcheck;

#[path = "it/auth.rs"]
mod auth;

#[path = "it/faultproxy.rs"]
mod faultproxy;

#[path = "it/retry.rs"]
mod retry;

#[path = "it/resume.rs"]
mod resume;

#[path = "it/nginx.rs"]
mod nginx;

#[path = "it/nginx_conf.rs"]
mod nginx_conf;

#[path = "it/nginx_selftest.rs"]
mod nginx_selftest;

#[path = "it/slowlink.rs"]
mod slowlink;

#[path = "it/redirect.rs"]
mod redirect;

#[path = "it/tokens.rs"]
mod tokens;

#[path = "it/tls.rs"]
mod tls;

#[path = "it/client.rs"]
mod client;

#[path = "it/creds.rs"]
mod creds;

#[path = "it/creds_token.rs"]
mod creds_token;

#[path = "it/mirror.rs"]
mod mirror;

#[path = "it/mirror_list.rs"]
mod mirror_list;

#[path = "it/proxy_servers.rs"]
mod proxy_servers;

#[path = "it/proxy.rs"]
mod proxy;

#[path = "it/proxy_env.rs"]
mod proxy_env;

#[path = "it/handshake.rs"]
mod handshake;

#[path = "it/containerd.rs"]
mod containerd;

#[path = "it/containerd_load.rs"]
mod containerd_load;

#[path = "it/images_more.rs"]
mod images_more;

#[path = "it/formats.rs"]
mod formats;

#[path = "it/schema1.rs"]
mod schema1;

#[path = "it/progress.rs"]
mod progress;
#[path = "it/verify_cache.rs"]
mod verify_cache;

#[path = "it/cache_cmd.rs"]
mod cache_cmd;

#[path = "it/private_files.rs"]
mod private_files;

#[path = "it/inspect.rs"]
mod inspect;

#[path = "it/logs.rs"]
mod logs;

#[path = "it/demo.rs"]
mod demo;

#[path = "it/corpus.rs"]
mod corpus;
#[path = "it/inplace.rs"]
mod inplace;

#[path = "it/corpus_net.rs"]
mod corpus_net;

#[path = "it/corpus_local.rs"]
mod corpus_local;

#[path = "it/props.rs"]
mod props;

#[path = "it/secrets.rs"]
mod secrets;

#[path = "it/layout.rs"]
mod layout;

#[path = "it/background.rs"]
mod background;

#[path = "it/r13.rs"]
mod r13;

#[path = "it/r13_more.rs"]
mod r13_more;

// The fault soak's modules (run by tests/soak.rs through scripts/soak):
// compiled here too, for their unit tests and so that lints cover them.
#[allow(dead_code)]
#[path = "soak/mod.rs"]
mod soak;

#[path = "it/platforms.rs"]
mod platforms;

#[path = "it/push.rs"]
mod push;

#[path = "it/push_faults.rs"]
mod push_faults;

#[path = "it/push_auth.rs"]
mod push_auth;

#[path = "it/cross.rs"]
mod cross;

#[path = "it/cross_linux.rs"]
mod cross_linux;

#[path = "it/cross_wine.rs"]
mod cross_wine;

#[path = "it/ask.rs"]
mod ask;

#[path = "it/wine.rs"]
mod wine;

#[path = "it/wine_procs.rs"]
mod wine_procs;

#[path = "it/cross_wine_files.rs"]
mod cross_wine_files;

#[path = "it/cross_wine_console.rs"]
mod cross_wine_console;
