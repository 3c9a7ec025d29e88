#include "data/text_clean.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "core/error.hpp"

namespace strata::data {
namespace {

enum class Normalization { kNone, kNfc, kNfkc };

Normalization parse_normalization(const std::string& name) {
  if (name == "none") return Normalization::kNone;
  if (name == "nfc") return Normalization::kNfc;
  if (name == "nfkc") return Normalization::kNfkc;
  STRATA_FAIL("unknown text normalization '{}' (expected \"none\", \"nfc\" or \"nfkc\")", name);
}

const utf8proc_uint8_t* bytes(std::string_view s) { return reinterpret_cast<const utf8proc_uint8_t*>(s.data()); }

// ASCII bytes every pass copies unchanged; scanning runs of them and appending whole runs keeps plain text fast.
bool is_plain_ascii(unsigned char c) { return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t'; }

bool is_ascii_control(unsigned char c) { return (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f; }

// Pass 1: checks (or repairs) UTF-8 and drops control/format characters. Sets `has_non_ascii`, which lets the
// caller skip normalization: ASCII text is already in every normal form.
std::string decode_and_strip(std::string_view doc, const TextCleanOptions& options, bool& has_non_ascii) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(doc.size());
  has_non_ascii = false;
  const size_t n = doc.size();
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && is_plain_ascii(static_cast<unsigned char>(doc[run]))) ++run;
    out.append(doc.data() + i, run - i);
    i = run;
    if (i == n) break;
    const auto c = static_cast<unsigned char>(doc[i]);
    if (c < 0x80) {
      if (options.strip_control && c == '\r') {
        out.push_back('\n');
        i += (i + 1 < n && doc[i + 1] == '\n') ? 2 : 1;
      } else {
        if (!options.strip_control || !is_ascii_control(c)) out.push_back(static_cast<char>(c));
        ++i;
      }
      continue;
    }
    has_non_ascii = true;
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t len = utf8proc_iterate(bytes(doc) + i, static_cast<utf8proc_ssize_t>(n - i), &cp);
    if (len < 0) {
      STRATA_CHECK(options.replace_invalid_utf8, "invalid UTF-8 at byte offset {}", i);
      out.append(kReplacement);
      ++i;
      continue;
    }
    if (options.strip_control) {
      const utf8proc_category_t cat = utf8proc_category(cp);
      if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF) {
        i += static_cast<size_t>(len);
        continue;
      }
    }
    out.append(doc.data() + i, static_cast<size_t>(len));
    i += static_cast<size_t>(len);
  }
  return out;
}

// Pass 2: NFC or NFKC of valid UTF-8.
std::string normalize(const std::string& text, Normalization form) {
  int options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  if (form == Normalization::kNfkc) options |= UTF8PROC_COMPAT;
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t len = utf8proc_map(bytes(text), static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                            static_cast<utf8proc_option_t>(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(mapped, &std::free);
  STRATA_CHECK(len >= 0, "Unicode normalization failed: {}", utf8proc_errmsg(len));
  return std::string(reinterpret_cast<const char*>(mapped), static_cast<size_t>(len));
}

// Pass 3 (valid UTF-8 in): one space per whitespace run, no trailing whitespace, at most one empty line in a row,
// no empty lines at either end. Written as a single scan that emits a line's separator only once the line turns
// out to have content.
std::string collapse_whitespace(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  int newlines_pending = 0;  // '\n' seen since the last line with content
  bool line_has_content = false, space_pending = false;
  auto start_content = [&] {
    if (!line_has_content) {
      if (!out.empty()) out.append(static_cast<size_t>(std::min(newlines_pending, 2)), '\n');
      newlines_pending = 0;
      line_has_content = true;
    }
    if (space_pending) out.push_back(' ');
    space_pending = false;
  };
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++newlines_pending;
      line_has_content = space_pending = false;
      ++i;
    } else if (c == ' ' || c == '\t') {
      space_pending = true;
      ++i;
    } else if (c < 0x80) {
      start_content();
      size_t run = i + 1;  // the rest of a word: no whitespace, all ASCII
      while (run < n && text[run] != ' ' && text[run] != '\t' && text[run] != '\n' &&
             static_cast<unsigned char>(text[run]) < 0x80)
        ++run;
      out.append(text, i, run - i);
      i = run;
    } else {
      utf8proc_int32_t cp = 0;
      const utf8proc_ssize_t len = utf8proc_iterate(bytes(text) + i, static_cast<utf8proc_ssize_t>(n - i), &cp);
      STRATA_CHECK(len > 0, "internal: invalid UTF-8 after decoding at byte offset {}", i);
      if (utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS) {
        space_pending = true;
      } else {
        start_content();
        out.append(text, i, static_cast<size_t>(len));
      }
      i += static_cast<size_t>(len);
    }
  }
  return out;
}

}  // namespace

void validate(const TextCleanOptions& options) { parse_normalization(options.normalization); }

std::string clean_text(std::string_view doc, const TextCleanOptions& options) {
  const Normalization form = parse_normalization(options.normalization);
  bool has_non_ascii = false;
  std::string text = decode_and_strip(doc, options, has_non_ascii);
  if (form != Normalization::kNone && has_non_ascii) text = normalize(text, form);
  if (options.collapse_whitespace) text = collapse_whitespace(text);
  return text;
}

}  // namespace strata::data
