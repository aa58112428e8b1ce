//! The pickle reader on arbitrary bytes (no panic; what it reads, the writer writes back to a
//! pickle that reads the same), and the writer on arrays shaped by the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardflow::formats::npy_pickle::{read_array_list, write_array_list, F16Array};

fn write(arrays: &[F16Array]) -> Vec<u8> {
    write_array_list(&arrays.iter().map(F16Array::view).collect::<Vec<_>>())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(arrays) = read_array_list(data) {
        let again = read_array_list(&write(&arrays)).expect("our pickle reads");
        assert_eq!(again.len(), arrays.len());
    }
    // arrays built from the input: shape from the first two bytes, data from the rest
    if data.len() >= 2 {
        let (rows, cols) = (data[0] as usize % 9 + 1, data[1] as usize % 9 + 1);
        let bits: Vec<u16> = data[2..]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
            .collect();
        let arrays: Vec<F16Array> = bits
            .chunks(rows * cols)
            .filter(|c| c.len() == rows * cols)
            .map(|c| F16Array::from_bits((rows, cols), c).unwrap())
            .collect();
        let back = read_array_list(&write(&arrays)).expect("our pickle reads");
        // compare bit patterns: NaN != NaN as values
        let bits = |a: &[F16Array]| -> Vec<(usize, usize, Vec<u16>)> {
            a.iter()
                .map(|x| (x.shape.0, x.shape.1, x.data.iter().map(|v| v.to_bits()).collect()))
                .collect()
        };
        assert_eq!(bits(&back), bits(&arrays));
    }
});
