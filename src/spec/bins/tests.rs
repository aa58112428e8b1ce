use super::*;

fn aspect_ratio(r: f64) -> Option<String> {
    BinTable::frames()
        .aspect_ratio
        .iter()
        .find(|a| r > a.above && r <= a.up_to)
        .map(|a| a.name.clone())
}

fn bin(w: i64, h: i64, n: i64) -> Option<String> {
    BinSpec::Frames.bin_of(&ClipDims {
        width: w,
        height: h,
        num_frames: n,
        framerate: 24.0,
    })
}

#[test]
fn resolution_thresholds() {
    assert_eq!(
        bin(1920, 1080, 10).unwrap(),
        "resolution_1080/aspect_ratio_16_9/frames_0_120"
    );
    assert_eq!(
        bin(1916, 1078, 10).unwrap(),
        "resolution_720/aspect_ratio_16_9/frames_0_120"
    );
    assert_eq!(
        bin(1280, 720, 10).unwrap(),
        "resolution_720/aspect_ratio_16_9/frames_0_120"
    );
    assert_eq!(bin(1278, 719, 10), None);
    assert_eq!(bin(854, 480, 240), None);
    assert_eq!(
        bin(780, 1200, 40).unwrap(),
        "resolution_720/aspect_ratio_9_16/frames_0_120"
    );
}

#[test]
fn aspect_boundaries_are_half_open() {
    // exactly on an upper bound belongs to the lower bin
    assert_eq!(aspect_ratio(0.65).as_deref(), Some("9_16"));
    assert_eq!(aspect_ratio(0.88).as_deref(), Some("3_4"));
    assert_eq!(aspect_ratio(1.16).as_deref(), Some("1_1"));
    assert_eq!(aspect_ratio(1.55).as_deref(), Some("4_3"));
    assert_eq!(aspect_ratio(10.0).as_deref(), Some("16_9"));
    assert_eq!(aspect_ratio(10.000001), None);
    assert_eq!(aspect_ratio(0.0), None);
    assert_eq!(aspect_ratio(0.6500001).as_deref(), Some("3_4"));
    // integer division as Python does it: 780/1200 == 0.65 exactly in f64
    assert_eq!(
        bin(780, 1200, 1).unwrap(),
        "resolution_720/aspect_ratio_9_16/frames_0_120"
    );
    assert_eq!(
        bin(1160, 1000, 1).unwrap(),
        "resolution_720/aspect_ratio_1_1/frames_0_120"
    );
    assert_eq!(bin(7220, 720, 12), None);
    assert_eq!(
        bin(7200, 720, 12).unwrap(),
        "resolution_720/aspect_ratio_16_9/frames_0_120"
    );
}

#[test]
fn frame_boundaries_are_inclusive() {
    let f = |n| bin(1280, 720, n).map(|b| b.rsplit('/').next().unwrap().to_string());
    assert_eq!(f(0).unwrap(), "frames_0_120");
    assert_eq!(f(120).unwrap(), "frames_0_120");
    assert_eq!(f(121).unwrap(), "frames_121_255");
    assert_eq!(f(255).unwrap(), "frames_121_255");
    assert_eq!(f(256).unwrap(), "frames_256_1023");
    assert_eq!(f(1023).unwrap(), "frames_256_1023");
    assert_eq!(f(1024).unwrap(), "frames_1024_inf");
    assert_eq!(f(i64::MAX).unwrap(), "frames_1024_inf");
    assert_eq!(f(-1), None);
}

#[test]
fn every_aspect_bin_reachable() {
    let cases = [
        (720, 1280, "9_16"),
        (960, 1280, "3_4"),
        (1080, 1080, "1_1"),
        (1440, 1080, "4_3"),
        (1920, 1080, "16_9"),
    ];
    for (w, h, a) in cases {
        let b = bin(w, h, 200).unwrap();
        assert!(b.contains(&format!("aspect_ratio_{a}/")), "{w}x{h} -> {b}");
    }
}

fn dur(w: i64, h: i64, n: i64, fps: f64) -> Option<String> {
    BinSpec::Duration.bin_of(&ClipDims {
        width: w,
        height: h,
        num_frames: n,
        framerate: fps,
    })
}

#[test]
fn duration_boundaries_first_match_wins() {
    let d = |n: i64| dur(1280, 720, n, 10.0).map(|b| b.rsplit('/').next().unwrap().to_string());
    assert_eq!(d(49), None, "4.9 s is under 5 s");
    assert_eq!(d(50).unwrap(), "duration_5_10", "exactly 5.0 s");
    assert_eq!(
        d(100).unwrap(),
        "duration_5_10",
        "exactly 10.0 s: the first bin"
    );
    assert_eq!(d(101).unwrap(), "duration_10_30");
    assert_eq!(d(300).unwrap(), "duration_10_30", "exactly 30.0 s");
    assert_eq!(d(301).unwrap(), "duration_30_inf");
    assert_eq!(d(i64::MAX).unwrap(), "duration_30_inf");
}

#[test]
fn duration_needs_a_positive_framerate_and_keeps_low_resolutions() {
    assert_eq!(dur(1280, 720, 200, 0.0), None);
    assert_eq!(dur(1280, 720, 200, -24.0), None);
    assert_eq!(dur(1280, 720, 200, f64::NAN), None);
    assert_eq!(
        dur(1279, 719, 400, 20.0).unwrap(),
        "resolution_lt_720/aspect_ratio_16_9/duration_10_30"
    );
    assert_eq!(
        dur(1280, 720, 400, 20.0).unwrap(),
        "resolution_720/aspect_ratio_16_9/duration_10_30"
    );
    assert_eq!(
        dur(1080, 1920, 400, 20.0).unwrap(),
        "resolution_1080/aspect_ratio_9_16/duration_10_30"
    );
    assert_eq!(
        dur(2, 2, 400, 20.0).unwrap(),
        "resolution_lt_720/aspect_ratio_1_1/duration_10_30"
    );
    // the aspect limit still drops
    assert_eq!(dur(7220, 720, 400, 20.0), None);
}

#[test]
fn spec_names_parse() {
    assert_eq!(BinSpec::parse("frames").unwrap(), BinSpec::Frames);
    assert_eq!(BinSpec::parse("duration").unwrap(), BinSpec::Duration);
    assert!(BinSpec::parse("seconds")
        .unwrap_err()
        .contains("frames or duration"));
}
