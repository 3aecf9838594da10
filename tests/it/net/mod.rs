//! How pulltar reaches a registry: HTTPS and certificates (`tls`), HTTP
//! CONNECT proxies from `--proxy` (`proxy`) and the environment
//! (`proxy_env`), blob redirects to a CDN-like host (`redirect`),
//! segmented downloads over a slow link (`slowlink`), and what `--insecure`
//! covers and where a registry may send the client (`trust_scope`).

mod proxy;
mod proxy_env;
mod redirect;
mod slowlink;
mod tls;
mod trust_scope;
