//! Any Content-Range header against any requested range: the check never
//! panics, and it accepts a header only when it says exactly the range
//! asked for.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulltar::fetch::segment::check_content_range;

fuzz_target!(|input: (&str, u64, u64, u64)| {
    let (header, start, end, size) = input;
    if check_content_range(header, start, end, size).is_ok() {
        let want = format!("bytes {start}-{}/", end - 1);
        assert!(header.trim().starts_with(&want), "{header:?} for {start}..{end}");
    }
    // The header we would expect is always accepted.
    if start < end && end <= size {
        let exact = format!("bytes {start}-{}/{size}", end - 1);
        assert!(check_content_range(&exact, start, end, size).is_ok());
    }
});
