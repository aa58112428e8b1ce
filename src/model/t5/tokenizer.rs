//! The T5 caption tokenizer, as the reference pipeline calls Hugging Face `T5TokenizerFast`:
//! `caption.strip()`, special tokens added (`</s>` appended), truncated to 512 ids.
//!
//! UMT5 uses the same rules: its tokenizer is also Hugging Face `T5Tokenizer(Fast)` over a
//! SentencePiece Unigram model (256k multilingual pieces instead of 32k), with `</s>` = 1
//! appended by the `tokenizer.json` template, and umt5-xxl's users (Wan, cosmos-predict2.5)
//! truncate to 512 as well. Normalization (NFKC, whitespace) is whatever `tokenizer.json`
//! says, so nothing here is vocabulary-specific. Pipelines that clean captions before
//! tokenizing (Wan's `clean="whitespace"`: ftfy, HTML unescaping, runs of whitespace collapsed)
//! do so outside the tokenizer; like the reference shard stage, this tokenizer does not.
//!
//! Only `tokenizer.json` is read. A checkpoint that ships only `spiece.model` (some UMT5 and
//! T5 repositories) needs one written first, with transformers and sentencepiece installed:
//! `python -c "from transformers import AutoTokenizer as T; T.from_pretrained('DIR').save_pretrained('DIR')"`
//! (the conversion `T5TokenizerFast` does itself); loading such a directory says so.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::model::ModelError;
use crate::text::python_strip;

/// Most ids a caption may have, `</s>` included (the reference's `max_length`).
pub const MAX_TOKENS: usize = 512;

/// Captions longer than this (in bytes) are cut before tokenizing; see [`bounded`].
pub const CUT_FROM: usize = 256 << 10;

/// Where a caption with no whitespace after [`CUT_FROM`] is cut (in bytes).
pub const CUT_LIMIT: usize = 1 << 20;

/// The part of `text` that is tokenized: all of it up to [`CUT_FROM`] bytes; beyond, the text
/// up to the first whitespace character at or after byte [`CUT_FROM`], or, when there is none
/// before byte [`CUT_LIMIT`], up to the character boundary at [`CUT_LIMIT`].
///
/// The `tokenizers` crate allocates about 100 bytes per input character before the result is
/// cut to 512 ids, so a 10 MB caption would cost a gigabyte. Cutting first gives the same ids:
/// T5's pre-tokenizer splits the normalized text into words at whitespace and the Unigram
/// model segments each word on its own, so the tokens of a prefix that ends at a whitespace
/// boundary are exactly the first tokens of the whole text; and 256 KiB of text yields far
/// more than 512 tokens, because every token covers a bounded number of characters (the
/// longest vocabulary piece). Text the normalizer removes (a caption of 300 KiB of control
/// characters, say) could make the prefix yield fewer; [`T5Tokenizer::try_encode`] then
/// doubles the cut, up to [`CUT_MAX`]. Only a single word longer than 768 KiB (or text whose
/// first [`CUT_MAX`] bytes yield fewer than 512 ids) is cut where the ids next to the cut are
/// not guaranteed to match tokenizing it whole.
pub fn bounded(text: &str) -> &str {
    bounded_from(text, CUT_FROM)
}

/// [`bounded`] cutting from byte `from` (at most `4 * from` bytes without whitespace).
fn bounded_from(text: &str, from: usize) -> &str {
    if text.len() <= from {
        return text;
    }
    let mut start = from;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let limit = (4 * from).min(text.len());
    let space = text[start..]
        .char_indices()
        .take_while(|(i, _)| start + i < limit)
        .find(|(_, c)| c.is_whitespace());
    match space {
        Some((i, _)) => &text[..start + i],
        None => {
            let mut end = limit;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            &text[..end]
        }
    }
}

/// The largest cut [`T5Tokenizer::try_encode`] widens to (bytes): text that still yields
/// fewer than 512 ids after this many bytes is mostly characters the normalizer removes.
pub const CUT_MAX: usize = 4 << 20;

/// A `tokenizer.json` (SentencePiece Unigram for T5) with T5's end-of-sequence handling.
#[derive(Debug, Clone)]
pub struct T5Tokenizer {
    inner: Tokenizer,
    eos_id: u32,
    /// Whether the post-processor already appends `</s>` (T5's template does).
    appends_eos: bool,
}

impl T5Tokenizer {
    /// Loads `tokenizer.json`; it must know the `</s>` token.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        if !path.is_file() {
            let spiece = path.with_file_name("spiece.model");
            if spiece.is_file() {
                return Err(ModelError::Tokenizer {
                    path: path.to_owned(),
                    message: format!(
                        "missing; {} is there, but only tokenizer.json is read: write it with \
                         `python -c \"from transformers import AutoTokenizer as T; \
                         T.from_pretrained('DIR').save_pretrained('DIR')\"` (needs \
                         transformers and sentencepiece)",
                        spiece.display()
                    ),
                });
            }
            return Err(ModelError::MissingFile {
                what: "tokenizer file",
                path: path.to_owned(),
            });
        }
        let error = |message: String| ModelError::Tokenizer {
            path: path.to_owned(),
            message,
        };
        let mut inner = Tokenizer::from_file(path).map_err(|e| error(e.to_string()))?;
        // Truncation and padding are done here, the way the reference does them.
        inner
            .with_truncation(None)
            .map_err(|e| error(e.to_string()))?;
        inner.with_padding(None);
        let eos_id = inner
            .token_to_id("</s>")
            .ok_or_else(|| error("no \"</s>\" token".to_owned()))?;
        let probe = inner.encode("", true).map_err(|e| error(e.to_string()))?;
        let appends_eos = probe.get_ids().last() == Some(&eos_id);
        Ok(Self {
            inner,
            eos_id,
            appends_eos,
        })
    }

    /// The id of `</s>`.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// Number of tokens, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of a raw caption: Python-`strip()`ped, tokenised, `</s>` appended, and cut
    /// to the first 511 ids + `</s>` when longer than 512. Never empty.
    ///
    /// Special-token strings inside the text (`</s>`, `<pad>`, `<extra_id_5>`) become their
    /// ids, as in Hugging Face; the sequence length is the length of the result.
    ///
    /// A caption over [`CUT_FROM`] bytes is cut at a word boundary first ([`bounded`]), so
    /// that memory does not grow with the caption; the ids are the same.
    pub fn try_encode(&self, caption: &str) -> Result<Vec<u32>, tokenizers::Error> {
        let text = python_strip(caption);
        let mut from = CUT_FROM;
        let mut cut = bounded_from(text, from);
        let mut ids = self.untruncated(cut)?;
        while cut.len() < text.len() && ids.len() <= MAX_TOKENS && from < CUT_MAX {
            // the prefix was not even cut by the 512 limit, so ids the whole text has may lie
            // beyond it (text the normalizer mostly removes): widen the cut, up to a bound,
            // so that memory stays bounded whatever the caption
            from *= 2;
            cut = bounded_from(text, from);
            ids = self.untruncated(cut)?;
        }
        if ids.len() > MAX_TOKENS {
            ids.truncate(MAX_TOKENS - 1);
            ids.push(self.eos_id);
        }
        Ok(ids)
    }

    /// The ids of `text` with `</s>` appended, not truncated.
    fn untruncated(&self, text: &str) -> Result<Vec<u32>, tokenizers::Error> {
        let encoding = self.inner.encode(text, true)?;
        let mut ids = encoding.get_ids().to_vec();
        if !self.appends_eos {
            ids.push(self.eos_id);
        }
        Ok(ids)
    }

    /// [`T5Tokenizer::try_encode`] for tokenizers that cannot fail on text (T5's Unigram model
    /// with an `<unk>` token never does).
    ///
    /// # Panics
    /// If the underlying tokenizer reports an error.
    pub fn encode(&self, caption: &str) -> Vec<u32> {
        self.try_encode(caption)
            .unwrap_or_else(|e| panic!("tokenizer failed on caption {caption:?}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_tokenizer() -> T5Tokenizer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        T5Tokenizer::load(&root.join("tests/data/t5-tiny/tokenizer.json")).unwrap()
    }

    /// `n` bytes of varied words separated by single spaces.
    fn words(n: usize) -> String {
        let vocabulary = [
            "a", "red", "car", "drives", "slowly", "past", "the", "old", "house,",
        ];
        let mut out = String::new();
        let mut i = 0usize;
        while out.len() < n {
            out.push_str(vocabulary[(i * 7 + i / 3) % vocabulary.len()]);
            out.push(' ');
            i += 1;
        }
        out.truncate(n);
        out
    }

    #[test]
    fn long_captions_are_cut_at_whitespace_after_256_kib() {
        let short = words(CUT_FROM);
        assert_eq!(bounded(&short), short);
        // the first whitespace at or after byte CUT_FROM
        let text = format!("{}xyz abc", "é".repeat(CUT_FROM / 2 - 1));
        assert_eq!(bounded(&text), &text[..CUT_FROM + 1]);
        assert!(bounded(&text).ends_with("xyz"));
        let tab = format!("{}\tb{}", "a".repeat(CUT_FROM + 10), " c".repeat(100));
        assert_eq!(bounded(&tab).len(), CUT_FROM + 10);
        // no whitespace before 1 MiB: cut at the character boundary there
        let solid = "日".repeat(CUT_LIMIT);
        let cut = bounded(&solid);
        assert!(
            cut.len() <= CUT_LIMIT && cut.len() > CUT_LIMIT - 3,
            "{}",
            cut.len()
        );
        assert!(solid.starts_with(cut));
        // no whitespace at all, and shorter than 1 MiB: all of it
        let medium = "x".repeat(CUT_FROM * 2);
        assert_eq!(bounded(&medium), medium);
        // whitespace only past 1 MiB does not count
        let late = format!("{} y", "x".repeat(CUT_LIMIT + 5));
        assert_eq!(bounded(&late).len(), CUT_LIMIT);
    }

    #[test]
    fn a_300_kib_caption_gives_the_ids_of_its_first_20_kib() {
        let tokenizer = fixture_tokenizer();
        let caption = words(300 << 10);
        assert!(bounded(&caption).len() < caption.len());
        let head = &caption[..20 << 10];
        let ids = tokenizer.encode(&caption);
        assert_eq!(ids.len(), MAX_TOKENS);
        assert_eq!(ids, tokenizer.encode(head));
        // the same as tokenizing it whole, as Hugging Face does
        let mut whole = tokenizer.untruncated(&caption).unwrap();
        whole.truncate(MAX_TOKENS - 1);
        whole.push(tokenizer.eos_id());
        assert_eq!(ids, whole);
    }

    #[test]
    fn a_missing_tokenizer_json_beside_spiece_model_says_how_to_make_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let err = T5Tokenizer::load(&path).unwrap_err();
        assert!(matches!(err, ModelError::MissingFile { .. }), "{err}");
        std::fs::write(dir.path().join("spiece.model"), b"x").unwrap();
        let msg = T5Tokenizer::load(&path).unwrap_err().to_string();
        for part in [
            "tokenizer.json",
            "spiece.model",
            "save_pretrained",
            "sentencepiece",
        ] {
            assert!(msg.contains(part), "{part} not in {msg}");
        }
    }

    #[test]
    fn a_cut_that_yields_too_few_ids_is_widened() {
        let tokenizer = fixture_tokenizer();
        // 600 KiB of characters the normalizer removes, then words: the first cut (256 KiB)
        // yields almost no ids, the widened one reaches the words
        let caption = format!("{}{}", "\u{1}\u{1} ".repeat(200 << 10), words(40 << 10));
        assert!(bounded(&caption).len() < caption.len());
        let ids = tokenizer.encode(&caption);
        assert_eq!(ids.len(), MAX_TOKENS);
        let mut whole = tokenizer.untruncated(&caption).unwrap();
        whole.truncate(MAX_TOKENS - 1);
        whole.push(tokenizer.eos_id());
        assert_eq!(ids, whole);
    }
}
