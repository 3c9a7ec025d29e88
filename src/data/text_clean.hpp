#pragma once
// Document cleaning before tokenization: Unicode normalization, control characters, whitespace and invalid UTF-8.
// The steps run in this order, each optional: decode (invalid UTF-8 -> error or U+FFFD), strip control characters,
// normalize, collapse whitespace. Stripping comes before normalizing so that removing a character can never leave
// a composable pair behind; the result is therefore a fixed point: clean_text(clean_text(x)) == clean_text(x).
#include <string>
#include <string_view>

namespace strata::data {

struct TextCleanOptions {
  // "none", "nfc" or "nfkc" (Unicode normalization forms, computed by utf8proc).
  std::string normalization = "nfc";
  // Drop Unicode control and format characters (categories Cc, Cf, e.g. NUL, ESC, U+200B) except '\n' and '\t';
  // "\r\n" and a lone '\r' become '\n'.
  bool strip_control = true;
  // Per line: every run of ' ', '\t' and other space separators (category Zs, e.g. U+00A0) becomes one ASCII space
  // and trailing whitespace is removed (a line of only whitespace becomes empty). Per document: several consecutive
  // empty lines become one, and leading and trailing empty lines are removed (so no trailing '\n' remains).
  bool collapse_whitespace = true;
  // false: invalid UTF-8 is an error naming the byte offset; true: each invalid byte becomes U+FFFD.
  bool replace_invalid_utf8 = false;
};

// Throws strata::Error on an unknown normalization name.
void validate(const TextCleanOptions& options);

// Returns the cleaned document; it may be empty (callers drop empty documents). Pure and thread-safe.
std::string clean_text(std::string_view doc, const TextCleanOptions& options);

}  // namespace strata::data
