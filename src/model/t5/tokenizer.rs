//! The T5 caption tokenizer, as the reference pipeline calls Hugging Face `T5TokenizerFast`:
//! `caption.strip()`, special tokens added (`</s>` appended), truncated to 512 ids.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::model::ModelError;

/// Most ids a caption may have, `</s>` included (the reference's `max_length`).
pub const MAX_TOKENS: usize = 512;

/// Python's `str.isspace()`: Unicode `White_Space` plus the separators U+001C..U+001F, which
/// Python counts as whitespace and Rust's [`char::is_whitespace`] does not.
pub fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub fn python_strip(text: &str) -> &str {
    text.trim_matches(is_python_whitespace)
}

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
    pub fn try_encode(&self, caption: &str) -> Result<Vec<u32>, tokenizers::Error> {
        let encoding = self.inner.encode(python_strip(caption), true)?;
        let mut ids = encoding.get_ids().to_vec();
        if !self.appends_eos {
            ids.push(self.eos_id);
        }
        if ids.len() > MAX_TOKENS {
            ids.truncate(MAX_TOKENS - 1);
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

    #[test]
    fn strip_follows_python() {
        assert_eq!(python_strip("  a b \n"), "a b");
        assert_eq!(python_strip("\u{1c}\u{1d}x\u{1e}\u{1f}"), "x");
        assert_eq!(python_strip("\u{a0}\u{2003}x\u{3000}\u{85}"), "x");
        // Zero-width space is not whitespace in Python either.
        assert_eq!(python_strip("\u{200b}x"), "\u{200b}x");
        assert_eq!(python_strip(" \t\r\n\u{b}\u{c} "), "");
        assert!(
            !"\u{1c}x".trim().starts_with('x'),
            "Rust's trim keeps U+001C"
        );
    }
}
