//! Unit tests of the numpy pickle writer and reader (no interpreter needed).

use super::*;
use crate::formats::test_python::XorShift;
use half::f16;

fn fixture(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rewrite(bytes: &[u8]) -> Vec<u8> {
    let arrays = read_array_list(bytes).unwrap();
    let views: Vec<_> = arrays.iter().map(F16Array::view).collect();
    write_array_list(&views)
}

/// Shapes and bit patterns, for comparisons where NaN must equal itself.
pub(super) fn bits(arrays: &[F16Array]) -> Vec<((usize, usize), Vec<u16>)> {
    arrays
        .iter()
        .map(|a| (a.shape, a.data.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

pub(super) fn random_array(rng: &mut XorShift, shape: (usize, usize)) -> F16Array {
    let bits: Vec<u16> = (0..shape.0 * shape.1)
        .map(|_| rng.next_u64() as u16)
        .collect();
    F16Array::from_bits(shape, &bits).unwrap()
}

#[test]
fn cosmos_fixture_roundtrips_byte_exact() {
    let bytes = fixture("cosmos-curate/example_t5_embeddings.pickle");
    assert_eq!(bytes.len(), 254_117);
    let arrays = read_array_list(&bytes).unwrap();
    assert_eq!(arrays.len(), 1);
    assert_eq!(arrays[0].shape, (124, 1024));
    // First payload bytes, as `python -m pickletools` shows them: b'0)k\xb4...'.
    assert_eq!(
        arrays[0].data[0].to_bits(),
        u16::from_le_bytes([b'0', b')'])
    );
    assert!(rewrite(&bytes) == bytes, "rewritten cosmos fixture differs");
}

#[test]
fn t5_tiny_fixture_roundtrips_byte_exact() {
    let bytes = fixture("t5-tiny/expected/window_embeddings.pickle");
    assert_eq!(bytes.len(), 2050);
    let arrays = read_array_list(&bytes).unwrap();
    let shapes: Vec<_> = arrays.iter().map(|a| a.shape).collect();
    assert_eq!(shapes, [(24, 16), (20, 16), (13, 16)]);
    assert_eq!(rewrite(&bytes), bytes);
}

#[test]
fn empty_list_is_pickle_dumps_empty_list() {
    // Three bytes of frame content is under FRAME_SIZE_MIN: no FRAME opcode.
    assert_eq!(write_array_list::<F16Array>(&[]), b"\x80\x04]\x94.");
    assert!(read_array_list(b"\x80\x04]\x94.").unwrap().is_empty());
}

#[test]
fn one_small_array_layout() {
    let a = F16Array::from_bits((1, 2), &[0x3c00, 0xc000]).unwrap();
    let bytes = write_array_list(&[a.view()]);
    let mut want = vec![0x80, 4, 0x95];
    let body: &[u8] = b"]\x94\x8c\x15numpy.core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\
\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x01K\x02\
\x86\x94h\x04\x8c\x05dtype\x94\x93\x94\x8c\x02f2\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\
\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b\x89C\x04\x00<\x00\xc0\x94t\x94ba.";
    want.extend_from_slice(&(body.len() as u64).to_le_bytes());
    want.extend_from_slice(body);
    assert_eq!(bytes, want);
    assert_eq!(bits(&read_array_list(&bytes).unwrap()), bits(&[a]));
}

/// Walks the top-level framing: returns (frame lengths, bytes outside frames).
fn frames(bytes: &[u8]) -> (Vec<usize>, usize) {
    let (mut lens, mut outside, mut i) = (Vec::new(), 0, 2);
    while i < bytes.len() {
        if bytes[i] == 0x95 {
            let n = u64::from_le_bytes(bytes[i + 1..i + 9].try_into().unwrap()) as usize;
            lens.push(n);
            i += 9 + n;
        } else if bytes[i] == b'B' {
            let n = u32::from_le_bytes(bytes[i + 1..i + 5].try_into().unwrap()) as usize;
            outside += 5 + n;
            i += 5 + n;
        } else {
            panic!("unexpected byte 0x{:02x} at {i} between frames", bytes[i]);
        }
    }
    (lens, outside)
}

#[test]
fn large_payloads_are_written_outside_frames() {
    let mut rng = XorShift::new(7);
    // 32 x 1024 f16 = 65536 bytes: exactly FRAME_SIZE_TARGET, so outside the frame.
    let big = random_array(&mut rng, (32, 1024));
    let bytes = write_array_list(&[big.view(), big.view()]);
    let (lens, outside) = frames(&bytes);
    assert_eq!(outside, 2 * (5 + 65536));
    assert_eq!(lens.len(), 3);
    // One element less stays inside a frame, which then grows past 64 KiB.
    let under = random_array(&mut rng, (1, 32767));
    let bytes = write_array_list(&[under.view()]);
    let (lens, outside) = frames(&bytes);
    assert_eq!((lens.len(), outside), (1, 0));
    assert!(lens[0] > 65534);
    assert_eq!(bits(&read_array_list(&bytes).unwrap()), bits(&[under]));
}

#[test]
fn frames_close_at_save_boundaries_past_64k() {
    let mut rng = XorShift::new(8);
    let arrays: Vec<_> = (0..5).map(|_| random_array(&mut rng, (15, 1024))).collect();
    let views: Vec<_> = arrays.iter().map(F16Array::view).collect();
    let bytes = write_array_list(&views);
    let (lens, outside) = frames(&bytes);
    assert_eq!(outside, 0);
    assert!(lens.len() >= 2, "{lens:?}");
    assert!(
        lens[..lens.len() - 1].iter().all(|&n| n >= 65536),
        "{lens:?}"
    );
    assert_eq!(bits(&read_array_list(&bytes).unwrap()), bits(&arrays));
}

#[test]
fn write_read_roundtrip_many_shapes() {
    let mut rng = XorShift::new(9);
    let shapes = [
        (1, 1),
        (1, 16),
        (3, 16),
        (0, 16),
        (0, 16),
        (7, 0),
        (124, 1024),
        (128, 128),
    ];
    let arrays: Vec<_> = shapes.iter().map(|&s| random_array(&mut rng, s)).collect();
    let views: Vec<_> = arrays.iter().map(F16Array::view).collect();
    let bytes = write_array_list(&views);
    assert_eq!(bits(&read_array_list(&bytes).unwrap()), bits(&arrays));
    // 1001 arrays take two MARK ... APPENDS batches, and late memo ids need LONG_BINGET.
    let mut many: Vec<_> = (0..1001).map(|_| random_array(&mut rng, (1, 2))).collect();
    many.push(F16Array::new((0, 4), vec![]).unwrap());
    many.push(F16Array::new((0, 2), vec![]).unwrap());
    let views: Vec<_> = many.iter().map(F16Array::view).collect();
    let bytes = write_array_list(&views);
    assert_eq!(bits(&read_array_list(&bytes).unwrap()), bits(&many));
}

#[test]
fn shape_must_match_data() {
    let e = F16Array::new((2, 3), vec![f16::ZERO; 5]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "array of shape (2, 3) needs 6 elements, got 5"
    );
    assert!(F16ArrayRef::new((usize::MAX, 2), &[]).is_err());
    assert!(F16ArrayRef::new((2, 0), &[]).is_ok());
}

#[test]
fn reader_rejects_what_it_does_not_understand() {
    let good = write_array_list(&[F16Array::from_bits((1, 2), &[1, 2]).unwrap().view()]);
    for cut in [0, 1, 5, 20, good.len() - 1] {
        assert!(read_array_list(&good[..cut]).is_err(), "cut at {cut}");
    }
    // Another global.
    let mut evil = good.clone();
    let at = evil.windows(7).position(|w| w == b"ndarray").unwrap();
    evil[at..at + 7].copy_from_slice(b"ndarrax");
    let e = read_array_list(&evil).unwrap_err().to_string();
    assert!(e.contains("unexpected global numpy.ndarrax"), "{e}");
    // Another dtype.
    let mut f4 = good.clone();
    let at = f4.windows(2).position(|w| w == b"f2").unwrap();
    f4[at + 1] = b'4';
    assert!(read_array_list(&f4)
        .unwrap_err()
        .to_string()
        .contains("not float16"));
    // Not a list.
    assert!(read_array_list(b"\x80\x04N.").is_err());
    assert!(read_array_list(b"\x80\x04\xff.")
        .unwrap_err()
        .to_string()
        .contains("opcode 0xff"));
}
