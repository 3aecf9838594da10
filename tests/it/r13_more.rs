//! Issue 13, beyond its three repros: what the fault soak and the work on
//! the fixes found, each against the real registry through the fault
//! proxy. A blob's one connection on a registry that ignores `Range`,
//! resumed after a cut, reads past the bytes it has rather than starting
//! over on a new connection.
//!
//! See: issue 13.

use crate::faultproxy::{Fault, Record, Rule};
use crate::r13::Proxied;
use crate::slowlink::one_big_layer;

const MIB: usize = 1 << 20;

/// Every ranged GET of a 12 MiB blob gets the whole blob, and the one
/// connection it falls back to is cut at 5 MiB: its resume (a ranged GET,
/// answered whole again) drops the first 5 MiB and brings the rest, on
/// the same one connection: one GET without Range in all, and nothing
/// else in flight beside it.
#[test]
fn r13_the_one_connection_resumes_past_the_bytes_it_has() {
    let case = Proxied::new(one_big_layer(12 * MIB));
    let big = case.img.layers[0].digest.clone();
    let size = case.img.layers[0].blob.len() as u64;
    let cut = Fault::CutAfter(5 * MIB as u64);
    case.px.add(Rule::new(&big, cut).unranged().times(1));
    case.px.add(Rule::new(&big, Fault::WholeBody).ranged());
    let res = case.pull(false, &["-t", "4", "--chunk-size", "2M"]);
    case.ok(&res);
    let gets = case.gets(&big);
    let log = case.px.dump();
    let at = gets
        .iter()
        .position(|r| r.range.is_none())
        .unwrap_or_else(|| panic!("no fallback GET:\n{log}"));
    let whole: Vec<&Record> = gets.iter().filter(|r| r.range.is_none()).collect();
    assert_eq!(whole.len(), 1, "one fallback, never a second:\n{log}");
    assert_eq!(whole[0].fault, Some("cut"), "{log}");
    let after: Vec<&Record> = gets[at + 1..]
        .iter()
        .filter(|r| r.start >= whole[0].start)
        .collect();
    assert_eq!(
        after.len(),
        1,
        "one resume after the cut, on the one connection:\n{log}"
    );
    assert_eq!(
        (after[0].status, after[0].body_bytes),
        (200, size),
        "the resume is answered with the whole blob:\n{log}"
    );
    assert!(
        after[0].start >= whole[0].end.unwrap(),
        "the resume overlapped the fallback GET:\n{log}"
    );
}
