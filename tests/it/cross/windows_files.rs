//! The Windows exe and the files around it, under Wine: credentials from
//! `%USERPROFILE%\.docker\config.json`, from `DOCKER_CONFIG` and from
//! Docker Desktop's credential helper (and a `--log-file` without them); an
//! existing output replaced by a rename, also while another program holds
//! it open for a moment (retried) or for too long (a clear error, the old
//! file intact); `-o -` into a pipe, byte for byte the archive `-o FILE`
//! writes; default file names that NTFS accepts. Every archive is loaded
//! by the Linux loaders.

use crate::support::auth_registries::TokenRegistry;
use crate::support::auth_registries::STALE;
use crate::support::images::{push_simple, Flavor};
use crate::support::loaders::verify_everywhere;
use crate::support::registry::Registry;
use crate::support::targets::loads_everywhere;
use crate::support::token_server::{PASSWORD, USER};
use crate::support::user_env::userpass;
use crate::support::util::{hex_of, list_dir, poll, run, Output, TempDir};
use crate::support::wine::valid_on_ntfs;
use crate::support::wine::{credhelper_exe, win_path, Wine};
use crate::support::wine_procs::Holder;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_config(dir: &Path, user: &str, password: &str, host: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let config = json!({"auths": {host: {"auth": userpass(user, password)}}});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

#[test]
fn windows_exe_reads_credentials_from_userprofile_and_docker_config() {
    let t = TokenRegistry::start("private/app");
    let wine = Wine::new();
    let work = TempDir::new("wincfg");
    let reference = t.reference();
    let host = t.reg.host();
    // %USERPROFILE%\.docker\config.json, as `docker login` leaves it.
    let profile_docker = wine.user_profile().join(".docker");
    write_config(&profile_docker, USER, PASSWORD, &host);
    let out = work.join("profile.tar");
    let log = work.join("pull.log");
    let args = [reference.as_str(), "-o", &win_path(&out), "--no-cache"];
    let log_arg = win_path(&log);
    let mut logged = args.to_vec();
    logged.extend(["--log-file", log_arg.as_str()]);
    let res = wine.run(work.path(), &logged, None);
    assert_eq!(
        res.code, 0,
        "with %USERPROFILE%\\.docker\\config.json:\n{res}"
    );
    t.assert_nothing_leaked(&res);
    // The log file (made with a DACL for this user alone, the Windows
    // mode 0600) holds the debug log and no secret.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("DEBUG") && !text.contains(PASSWORD), "{text}");
    loads_everywhere(&out, &t.img, &reference);
    // DOCKER_CONFIG wins over the profile's config, which now holds a
    // stale password.
    write_config(&profile_docker, USER, STALE, &host);
    let res = wine.run(work.path(), &args, None);
    assert_ne!(res.code, 0, "the stale password was accepted:\n{res}");
    let elsewhere = work.join("dcfg");
    write_config(&elsewhere, USER, PASSWORD, &host);
    let out = work.join("docker_config.tar");
    let mut cmd = wine.pulltar(work.path());
    cmd.args([reference.as_str(), "-o", &win_path(&out), "--no-cache"])
        .env("DOCKER_CONFIG", win_path(&elsewhere));
    let res = run(&mut cmd, Duration::from_secs(180));
    assert_eq!(res.code, 0, "with DOCKER_CONFIG:\n{res}");
    t.assert_nothing_leaked(&res);
    loads_everywhere(&out, &t.img, &reference);
}

/// Docker Desktop's way (`"credsStore": "desktop"`): the helper
/// `docker-credential-desktop.exe` is found by name and asked.
#[test]
fn windows_exe_asks_docker_desktops_credential_helper() {
    let t = TokenRegistry::start("private/app");
    let wine = Wine::new();
    wine.install(&credhelper_exe());
    let work = TempDir::new("winhelper");
    let reference = t.reference();
    let docker = wine.user_profile().join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    let config = json!({"credsStore": "desktop", "auths": {t.reg.host(): {}}});
    std::fs::write(docker.join("config.json"), config.to_string()).unwrap();
    let out = work.join("helper.tar");
    let mut cmd = wine.pulltar(work.path());
    cmd.args([reference.as_str(), "-o", &win_path(&out), "--no-cache"])
        .env("PT_HELPER_USER", USER)
        .env("PT_HELPER_SECRET", PASSWORD);
    let res = run(&mut cmd, Duration::from_secs(180));
    assert_eq!(res.code, 0, "with docker-credential-desktop.exe:\n{res}");
    t.assert_nothing_leaked(&res);
    loads_everywhere(&out, &t.img, &reference);
}

/// What the output's directory holds besides `keep` (a temporary archive
/// left behind would show here).
fn others(dir: &Path, keep: &str) -> Vec<String> {
    list_dir(dir).into_iter().filter(|n| n != keep).collect()
}

#[test]
fn windows_exe_replaces_an_existing_output_even_one_held_for_a_moment() {
    let reg = Registry::start();
    let v1 = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let v2 = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let wine = Wine::new();
    let work = TempDir::new("winrepl");
    let dir = work.join("out");
    std::fs::create_dir(&dir).unwrap();
    let out = dir.join("app.tar");
    let cache = work.join("cache");
    let pull = |tag: &str| {
        let mut cmd = wine.pulltar(work.path());
        cmd.arg(format!("{}/team/app:{tag}", reg.host())).args([
            "-o",
            &win_path(&out),
            "--cache-dir",
            &win_path(&cache),
        ]);
        cmd
    };
    // An older file at the output is replaced.
    std::fs::write(&out, b"an older file").unwrap();
    let res = run(&mut pull("v1"), Duration::from_secs(180));
    assert_eq!(res.code, 0, "{res}");
    assert_eq!(others(&dir, "app.tar"), Vec::<String>::new());
    let first = std::fs::read(&out).unwrap();
    // Held for longer than pulltar waits: a clear error after about 5 s,
    // the old archive intact, nothing else left.
    let holder = Holder::hold(&wine, &out);
    let start = Instant::now();
    let res = run(&mut pull("v2"), Duration::from_secs(180));
    let took = start.elapsed();
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr.contains("cannot rename the archive to")
            && res.stderr.contains("another program may have it open"),
        "{res}"
    );
    assert!(took >= Duration::from_secs(4), "gave up after {took:?}");
    assert!(
        std::fs::read(&out).unwrap() == first,
        "the held file changed"
    );
    assert_eq!(others(&dir, "app.tar"), Vec::<String>::new());
    // Held while the archive is written, let go a second later: the
    // rename is retried and goes through.
    let mut child = pull("v2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The archive being written sits in the cache's tmp/ (or beside the
    // output, were the cache on another drive).
    let writing = poll(3000, Duration::from_millis(20), || {
        let in_cache = list_dir(&cache.join("tmp"))
            .iter()
            .any(|n| n.ends_with(".archive"));
        (in_cache || !others(&dir, "app.tar").is_empty()).then_some(())
    });
    assert!(writing.is_some(), "no temporary archive appeared");
    std::thread::sleep(Duration::from_secs(1));
    let still = matches!(child.try_wait(), Ok(None));
    if !still {
        let _ = child.wait();
    }
    assert!(still, "pulltar.exe did not wait for the held file");
    assert!(std::fs::read(&out).unwrap() == first, "replaced while held");
    holder.release();
    let code =
        crate::support::wine_procs::wait_for(&mut child, Duration::from_secs(60), "pulltar.exe");
    assert_eq!(code, 0);
    assert_eq!(others(&dir, "app.tar"), Vec::<String>::new());
    loads_everywhere(&out, &v2, &format!("{}/team/app:v2", reg.host()));
    drop(v1);
}

#[test]
fn windows_exe_streams_a_binary_clean_archive_into_a_pipe() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let wine = Wine::new();
    let work = TempDir::new("winpipe");
    let reference = format!("{}/team/app:v1", reg.host());
    let cache = win_path(&work.join("cache"));
    let file = work.join("file.tar");
    let args = [
        reference.as_str(),
        "-o",
        &win_path(&file),
        "--cache-dir",
        &cache,
    ];
    let res = wine.run(work.path(), &args, None);
    assert_eq!(res.code, 0, "{res}");
    // `pulltar.exe … -o - | cat > piped.tar`: a real pipe, then a file.
    let piped = work.join("piped.tar");
    let inner = {
        let mut c = wine.pulltar(work.path());
        c.args([reference.as_str(), "-o", "-", "--cache-dir", &cache]);
        c
    };
    let mut line = String::new();
    for word in std::iter::once(inner.get_program()).chain(inner.get_args()) {
        line.push_str(&format!("'{}' ", word.to_str().unwrap()));
    }
    line.push_str(&format!("| cat > '{}'", piped.display()));
    let mut sh = Command::new("sh");
    sh.args(["-c", &line]).current_dir(work.path());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let res: Output = run(&mut sh, Duration::from_secs(180));
    assert_eq!(res.code, 0, "{res}");
    let (a, b) = (
        std::fs::read(&file).unwrap(),
        std::fs::read(&piped).unwrap(),
    );
    assert!(
        a == b,
        "-o - gave {} bytes, -o FILE {} bytes: not the same archive",
        b.len(),
        a.len()
    );
    loads_everywhere(&piped, &img, &reference);
}

#[test]
fn windows_exe_default_names_are_valid_on_ntfs() {
    let reg = Registry::start();
    let tagged = push_simple(&reg, "team/app", "v1.2-rc_3", Flavor::Docker);
    let wine = Wine::new();
    let cache = TempDir::new("winnamecache");
    // By a tag with dots, a dash and an underscore; by digest only.
    let by_tag = format!("{}/team/app:v1.2-rc_3", reg.host());
    let by_digest = format!("{}/team/app@{}", reg.host(), tagged.manifest_digest);
    let short = &hex_of(&tagged.manifest_digest)[..12];
    for (reference, name) in [
        (&by_tag, "team_app_v1.2-rc_3.tar".to_string()),
        (&by_digest, format!("team_app_{short}.tar")),
    ] {
        let work = TempDir::new("winname");
        let args = [reference.as_str(), "--cache-dir", &win_path(cache.path())];
        let res = wine.run(work.path(), &args, None);
        assert_eq!(res.code, 0, "{reference}:\n{res}");
        assert_eq!(work.list(), std::slice::from_ref(&name), "{res}");
        assert!(valid_on_ntfs(&name), "{name}");
        let tar = work.join(&name);
        match reference == &by_tag {
            true => loads_everywhere(&tar, &tagged, reference),
            false => verify_everywhere(&tar, &tagged, &[]),
        }
    }
    for bad in ["a:b.tar", "con.tar", "x.tar.", "a?.tar", "LPT1", "a\u{7}"] {
        assert!(!valid_on_ntfs(bad), "{bad}");
    }
}
