//! The platform functions against the real file system and console, on
//! whichever system runs the tests (the Windows side runs under Wine).

use super::*;
use std::io::Write;

/// A fresh directory for one test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("pulltar-sys-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn positioned_writes_and_reads_land_where_asked() {
    let d = Dir::new("pos");
    let path = d.0.join("f");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.set_len(64).unwrap();
    write_all_at(&f, b"tail", 60).unwrap();
    write_all_at(&f, b"head", 0).unwrap();
    // Threads writing through one handle at their own offsets.
    let f = std::sync::Arc::new(f);
    let writers: Vec<_> = (0..4u8)
        .map(|i| {
            let f = std::sync::Arc::clone(&f);
            std::thread::spawn(move || write_all_at(&f, &[b'a' + i; 8], 8 + 8 * u64::from(i)))
        })
        .collect();
    for w in writers {
        w.join().unwrap().unwrap();
    }
    let data = std::fs::read(&path).unwrap();
    assert_eq!(&data[..4], b"head");
    assert_eq!(&data[8..40], b"aaaaaaaabbbbbbbbccccccccdddddddd");
    assert_eq!(&data[60..], b"tail");
    let mut buf = [0u8; 8];
    assert_eq!(read_at(&f, &mut buf, 24).unwrap(), 8);
    assert_eq!(&buf, b"cccccccc");
    assert_eq!(
        read_at(&f, &mut buf, 62).unwrap(),
        2,
        "short read at the end"
    );
    assert_eq!(
        read_at(&f, &mut buf, 64).unwrap(),
        0,
        "nothing past the end"
    );
}

#[test]
fn same_file_until_removed_or_replaced() {
    let d = Dir::new("same");
    let (a, b, c) = (d.0.join("a"), d.0.join("b"), d.0.join("c"));
    for p in [&a, &b, &c] {
        std::fs::write(p, b"x").unwrap();
    }
    let open = File::open(&a).unwrap();
    assert!(is_same_file(&open, &a));
    assert!(!is_same_file(&open, &b));
    // Removed while open. On Windows a removed file that is still open
    // may keep its name until the last handle closes (Wine opens it
    // again by that name; Windows without POSIX deletion refuses to), so
    // only Unix can tell at once.
    std::fs::remove_file(&a).unwrap();
    #[cfg(unix)]
    assert!(!is_same_file(&open, &a), "removed");
    drop(open);
    assert!(
        !is_same_file(&File::open(&b).unwrap(), &a),
        "removed and closed"
    );
    // Replaced (the handle is closed first: Wine, unlike Windows 10 on
    // NTFS, refuses to rename over a file that is open).
    let open = File::open(&b).unwrap();
    let id_before = is_same_file(&open, &b);
    drop(open);
    replace(&c, &b).unwrap();
    let reopened = File::open(&b).unwrap();
    assert!(id_before && is_same_file(&reopened, &b));
    assert!(!is_same_file(&reopened, &d.0.join("missing")));
}

#[test]
fn replace_puts_the_new_file_over_the_old() {
    let d = Dir::new("replace");
    let (tmp, out) = (d.0.join("out.tar.tmp"), d.0.join("out.tar"));
    std::fs::write(&out, b"old").unwrap();
    std::fs::write(&tmp, b"new").unwrap();
    replace(&tmp, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"new");
    assert!(!tmp.exists());
    let e = replace(&tmp, &out).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
}

#[test]
fn private_file_appends_and_is_the_owners_only() {
    let d = Dir::new("private");
    let path = d.0.join("log");
    for line in ["one\n", "two\n"] {
        let mut f = open_private_append(&path).unwrap();
        f.write_all(line.as_bytes()).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn interrupt_flag_is_untouched_until_a_signal() {
    static FLAG: AtomicBool = AtomicBool::new(false);
    catch_interrupts(&FLAG);
    catch_interrupts(&FLAG);
    assert!(!FLAG.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn writeback_is_asked_or_unsupported() {
    let d = Dir::new("wb");
    let mut f = File::create(d.0.join("f")).unwrap();
    f.write_all(&[7u8; 1 << 16]).unwrap();
    match start_writeback(&f) {
        Ok(()) => {}
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}"),
    }
}

#[test]
fn no_terminal_no_size_and_the_console_questions_answer() {
    // Test runs capture standard error: no terminal there, usually.
    if let Some((cols, rows)) = terminal_size() {
        assert!(cols > 0 && rows > 0);
    }
    let _ = enable_escape_sequences();
    let _ = owns_console_alone();
}

#[test]
fn default_directories_follow_the_environment() {
    let cache = default_cache_dir();
    let home = home_dir();
    #[cfg(unix)]
    {
        match env_path("XDG_CACHE_HOME") {
            Some(x) => assert_eq!(cache, Some(x.join("pulltar"))),
            None => assert_eq!(cache, home.clone().map(|h| h.join(".cache/pulltar"))),
        }
        assert_eq!(home, env_path("HOME"));
    }
    #[cfg(windows)]
    {
        if let Some(local) = env_path("LOCALAPPDATA") {
            assert_eq!(cache, Some(local.join("pulltar")));
        }
        assert_eq!(home, env_path("USERPROFILE"));
    }
}

#[test]
fn the_machine_has_an_architecture() {
    let arch = machine_arch();
    assert!(!arch.is_empty());
    #[cfg(unix)]
    assert_eq!(arch, std::env::consts::ARCH);
}

#[test]
fn system_store_certificates_are_der() {
    let certs = system_root_certificates();
    // DER certificates start with a SEQUENCE (0x30).
    assert!(certs.iter().all(|c| c.len() > 16 && c[0] == 0x30));
    if !SYSTEM_ROOTS_COMPLETE {
        assert!(!certs.is_empty(), "the Windows ROOT store is empty");
    }
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn private_folders_and_files_are_the_owners_alone() {
    let d = Dir::new("privdir");
    let deep = d.0.join("a/b");
    create_private_dir_all(&deep).unwrap();
    create_private_dir_all(&deep).unwrap();
    let one = d.0.join("one");
    create_private_dir(&one).unwrap();
    let again = create_private_dir(&one).unwrap_err();
    assert_eq!(again.kind(), io::ErrorKind::AlreadyExists, "{again}");
    let file = deep.join("f");
    let mut options = OpenOptions::new();
    open_private(&file, options.write(true).create_new(true)).unwrap();
    #[cfg(unix)]
    {
        for dir in [d.0.join("a"), deep.clone(), one.clone()] {
            assert_eq!(mode_of(&dir), 0o700, "{}", dir.display());
        }
        assert_eq!(mode_of(&file), 0o600);
    }
    assert!(!keep_dir_private(&deep, true).unwrap(), "already private");
}

#[cfg(unix)]
#[test]
fn a_link_is_never_opened_through() {
    let d = Dir::new("nofollow");
    let (victim, link) = (d.0.join("victim"), d.0.join("link"));
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let mut options = OpenOptions::new();
    let opened = open_private(&link, options.write(true).create(true).truncate(true));
    assert!(opened.is_err(), "opened through a link");
    assert!(is_link(&link) && !is_link(&victim));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let mut options = OpenOptions::new();
    assert!(open_private(&link, options.read(true)).is_err());
}

#[cfg(unix)]
#[test]
fn a_folder_others_may_write_in_is_refused_a_readable_one_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new("keep");
    let set = |mode| std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(mode));
    set(0o755).unwrap();
    assert!(!keep_dir_private(&d.0, false).unwrap(), "the user's choice");
    assert_eq!(mode_of(&d.0), 0o755);
    assert!(keep_dir_private(&d.0, true).unwrap(), "tightened");
    assert_eq!(mode_of(&d.0), 0o700);
    set(0o775).unwrap();
    assert!(keep_dir_private(&d.0, true).unwrap());
    for open in [0o777, 0o1777, 0o703] {
        set(open).unwrap();
        let e = keep_dir_private(&d.0, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("other users may write"), "{e}");
        assert_eq!(mode_of(&d.0), open, "left as it was");
        let chosen = keep_dir_private(&d.0, false);
        assert_eq!(chosen.is_ok(), open == 0o1777, "{open:o}: {chosen:?}");
    }
    set(0o700).unwrap();
    // A sticky folder all may write in, never changed.
    assert!(!keep_dir_private(Path::new("/tmp"), false).unwrap());
    assert!(
        keep_dir_private(Path::new("/tmp"), true).is_err(),
        "/tmp is 1777"
    );
    assert_eq!(mode_of(Path::new("/tmp")), 0o1777);
}

#[test]
fn a_process_is_running_until_it_ends() {
    assert!(process_exists(std::process::id()));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert!(!process_exists(pid), "pid {pid} ended");
    assert!(!process_exists(0));
}

// The archive's output.

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo").arg(path).status();
    assert!(ok.unwrap().success(), "mkfifo {}", path.display());
}

#[test]
fn output_nodes_follow_links() {
    let d = Dir::new("nodes");
    let file = d.0.join("f");
    std::fs::write(&file, b"x").unwrap();
    assert_eq!(node_at(&file).unwrap(), Node::File);
    assert_eq!(node_at(&d.0).unwrap(), Node::Dir);
    assert_eq!(node_at(&d.0.join("missing")).unwrap(), Node::Missing);
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(&file, d.0.join("link")).unwrap();
        symlink(d.0.join("gone"), d.0.join("dangling")).unwrap();
        symlink("loop", d.0.join("loop")).unwrap();
        assert_eq!(node_at(&d.0.join("link")).unwrap(), Node::File);
        assert_eq!(node_at(&d.0.join("dangling")).unwrap(), Node::Missing);
        assert!(node_at(&d.0.join("loop")).is_err());
        assert_eq!(node_at(Path::new("/dev/null")).unwrap(), Node::Through);
        let fifo = d.0.join("fifo");
        mkfifo(&fifo);
        assert_eq!(node_at(&fifo).unwrap(), Node::Through);
        let socket = d.0.join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(node_at(&socket).unwrap(), Node::Other("a socket"));
    }
    #[cfg(windows)]
    for name in [
        "NUL",
        "nul",
        r"C:\any\Nul",
        "CON",
        r"\\.\pipe\x",
        r"\\.\NUL",
    ] {
        assert_eq!(node_at(Path::new(name)).unwrap(), Node::Through, "{name}");
    }
}

#[test]
fn through_opens_a_device_or_a_pipe_never_a_file() {
    let d = Dir::new("through");
    let file = d.0.join("f");
    std::fs::write(&file, b"kept").unwrap();
    let e = open_through(&file).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"kept");
    let missing = d.0.join("missing");
    assert_eq!(
        open_through(&missing).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert!(!missing.exists());
    let null = if cfg!(windows) { "NUL" } else { "/dev/null" };
    let mut w = open_through(Path::new(null)).unwrap();
    w.write_all(b"gone").unwrap();
    #[cfg(unix)]
    {
        let fifo = d.0.join("fifo");
        mkfifo(&fifo);
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || std::fs::read(fifo).unwrap()
        });
        let mut w = open_through(&fifo).unwrap();
        w.write_all(b"through").unwrap();
        drop(w);
        assert_eq!(reader.join().unwrap(), b"through");
        assert_eq!(node_at(&fifo).unwrap(), Node::Through);
    }
}
