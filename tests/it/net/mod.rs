//! How pulltar reaches a registry: HTTPS and certificates (`tls`), HTTP
//! CONNECT proxies from `--proxy` (`proxy`) and the environment
//! (`proxy_env`), blob redirects to a CDN-like host (`redirect`), and
//! segmented downloads over a slow link (`slowlink`).

mod proxy;
mod proxy_env;
mod redirect;
mod slowlink;
mod tls;
