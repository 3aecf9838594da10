//! A pulltar run in the background (the native binary, or the Windows exe
//! under Wine), for tests that stop it partway: its PID, whether it has
//! exited, its output once it does, SIGKILL and SIGINT; killed on drop so
//! that a failed test leaves no process behind. And the two helpers those
//! tests share on a `retry::Case` (its image behind the fault proxy): the
//! blob bytes in all, and waiting until the proxy has relayed so many.
//! It starts no server and checks no archive.

use crate::support::fault_case::Case;
use crate::support::util::{poll, Output};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Background {
    child: Option<Child>,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

fn drain(r: impl Read + Send + 'static) -> Option<JoinHandle<String>> {
    Some(std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::BufReader::new(r).read_to_string(&mut s);
        s
    }))
}

impl Background {
    /// Starts `cmd` with no standard input, its output collected.
    pub fn start(mut cmd: Command) -> Background {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
        let (o, e) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        Background {
            child: Some(child),
            out: drain(o),
            err: drain(e),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(Some(_)))
    }

    /// Waits up to `limit` for the exit (then kills it and fails).
    pub fn wait(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("pulltar did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            code: status.code().unwrap_or(-1),
            stdout: self.out.take().unwrap().join().unwrap(),
            stderr: self.err.take().unwrap().join().unwrap(),
        }
    }

    /// SIGKILL, then the output so far.
    pub fn kill(mut self) -> Output {
        let _ = self.child.as_mut().unwrap().kill();
        self.wait(Duration::from_secs(10))
    }

    /// `kill -INT PID` (under Wine, the program gets a console Ctrl-C).
    pub fn interrupt(&self) {
        let pid = self.pid().to_string();
        let st = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -INT {pid} failed");
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// All blob bytes of the case's image (layers and config).
pub fn blob_total(case: &Case) -> u64 {
    let layers: usize = case.img.layers.iter().map(|l| l.blob.len()).sum();
    (layers + case.img.config.len()) as u64
}

/// Waits until the proxy has relayed `target` blob bytes in all, failing
/// if the pull ended first (the throttle would then be too weak).
pub fn wait_for_bytes(case: &Case, run: &mut Background, target: u64) {
    let reached = poll(6000, Duration::from_millis(5), || {
        assert!(
            !run.exited(),
            "the pull ended before {target} bytes:\n{}",
            case.px.dump()
        );
        (case.px.body_bytes("/blobs/") >= target).then_some(())
    });
    assert!(
        reached.is_some(),
        "never reached {target} bytes:\n{}",
        case.px.dump()
    );
}
