//! Windows processes beside pulltar's exe under Wine: a program that holds
//! a file open without letting anyone replace it ([`Holder`], built from
//! `tests/wine/holdfile.c`), as a virus scanner or a viewer does; and a
//! console session ([`Console`]): the exe under a pseudo-terminal
//! (`script` from bsdutils), where Wine gives it a console window of its
//! own, as Explorer does on a double-click. The test reads what the
//! console shows and types into it (Enter is a carriage return there).
//! Every wait is bounded; the processes are killed on drop, and the
//! prefix's `wineserver -k` (when the [`Wine`] is dropped) ends whatever
//! Windows process is left.

use crate::support::util::{require_tool, Output};
use crate::support::wine::{holdfile_exe, win_path, Wine};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long any one step of these processes may take.
const LIMIT: Duration = Duration::from_secs(90);

/// Waits up to `limit` for `child` to exit; kills it and panics after.
pub fn wait_for(child: &mut Child, limit: Duration, what: &str) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `holdfile.exe FILE` running in the test's Wine prefix.
pub struct Holder {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl Holder {
    /// Opens `file` (which must exist) in a Windows process of `wine`'s
    /// prefix and returns once it holds it.
    pub fn hold(wine: &Wine, file: &Path) -> Holder {
        let mut cmd = wine.exe(&holdfile_exe(), file.parent().unwrap());
        cmd.arg(win_path(file))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start holdfile.exe under wine");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let stdin = child.stdin.take();
        let mut holder = Holder {
            child: Some(child),
            stdin,
        };
        match rx.recv_timeout(LIMIT) {
            Ok(line) if line.trim() == "held" => holder,
            other => {
                let child = holder.child.as_mut().unwrap();
                let _ = child.kill();
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                panic!(
                    "holdfile.exe did not hold {}: {other:?} {err}",
                    file.display()
                );
            }
        }
    }

    /// Lets go of the file (the end of its input) and waits for the exit.
    pub fn release(mut self) {
        drop(self.stdin.take());
        let code = wait_for(self.child.as_mut().unwrap(), LIMIT, "holdfile.exe");
        assert_eq!(code, 0, "holdfile.exe failed");
        self.child = None;
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// pulltar's exe in a console of its own, under a pseudo-terminal.
pub struct Console {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
    /// How far into the screen's text [`Console::expect`] has matched.
    seen: usize,
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Console {
    /// Starts `pulltar.exe ARGS` in `cwd`, on a 120×40 terminal.
    pub fn start(wine: &Wine, cwd: &Path, args: &[&str]) -> Console {
        let script = require_tool("script", "bsdutils");
        let mut inner = wine.pulltar(cwd);
        inner.args(args);
        // Raw from the start: what is typed reaches Wine's console as
        // typed (a carriage return is Enter) whenever Wine reads the
        // terminal, never turned into a newline or echoed by the terminal.
        let mut line = String::from("stty cols 120 rows 40 raw -echo; exec");
        for word in std::iter::once(inner.get_program()).chain(inner.get_args()) {
            line.push(' ');
            line.push_str(&sh_quote(word.to_str().expect("a UTF-8 argument")));
        }
        let mut cmd = Command::new(script);
        cmd.args(["-qfec", &line, "/dev/null"])
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd.spawn().expect("start script");
        let mut stdout = child.stdout.take().unwrap();
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&screen);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Console {
            stdin: child.stdin.take(),
            child: Some(child),
            screen,
            reader: Some(reader),
            seen: 0,
        }
    }

    /// What the console has shown so far (escape sequences included).
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the console shows `text` after what was matched last.
    pub fn expect(&mut self, text: &str) {
        let start = Instant::now();
        while start.elapsed() < LIMIT {
            let shown = self.shown();
            if let Some(i) = shown.get(self.seen..).and_then(|s| s.find(text)) {
                self.seen += i + text.len();
                return;
            }
            if !self.running() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the console never showed {text:?}:\n{}", self.shown());
    }

    /// Types `text` and Enter.
    pub fn type_line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("the console's input");
        stdin
            .write_all(format!("{text}\r").as_bytes())
            .and_then(|_| stdin.flush())
            .expect("type into the console");
    }

    /// Whether the program still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(None))
    }

    /// Waits for the exit: the exit code and, as `stdout`, all it showed.
    pub fn wait(mut self) -> Output {
        let code = wait_for(
            self.child.as_mut().unwrap(),
            LIMIT,
            "pulltar.exe in a console",
        );
        self.child = None;
        drop(self.stdin.take());
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Output {
            code,
            stdout: self.shown(),
            stderr: String::new(),
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
