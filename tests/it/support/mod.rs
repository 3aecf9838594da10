//! What the tests start and use, and no test of pulltar itself: the real
//! registry and its API calls (`registry`), images built in memory and
//! pushed to it (`images`, `images_more`), nginx fronts and their configs
//! (`nginx/`: throttle, redirect, TLS, rationed), the TLS front's CA
//! (`tls_front`), the token server (`token_server`) and the registries
//! that ask for credentials (`auth_registries`), the scripted fault proxy
//! (`faultproxy/`) and the fixture behind it (`fault_case`), HTTP CONNECT
//! proxies (`proxy_servers`), a user's environment (`user_env`: HOME,
//! docker config, credential helpers), pulltar in the background
//! (`background`), the loaders that prove an archive (`loaders`,
//! `oci_check`, `dockerd`, `containerd`), the release binaries and their
//! runners (`targets`, `wine`, `wine_procs`), and the small std-only
//! helpers every file uses (`util`). Their own tests (`selfcheck`,
//! `faultproxy/selftest.rs`, `nginx/selftest.rs`, a few beside the
//! helpers) prove the harness: if they pass and a test elsewhere fails,
//! the fault is in pulltar. Nothing here imports from a test folder.

pub mod auth_registries;
pub mod background;
pub mod containerd;
pub mod dockerd;
pub mod fault_case;
pub mod faultproxy;
pub mod images;
pub mod images_more;
pub mod loaders;
pub mod nginx;
pub mod oci_check;
pub mod proxy_servers;
pub mod registry;
mod selfcheck;
pub mod targets;
pub mod tls_front;
pub mod token_server;
pub mod user_env;
pub mod util;
pub mod wine;
pub mod wine_procs;
