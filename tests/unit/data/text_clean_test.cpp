#include "data/text_clean.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "support/expect_error.hpp"

namespace strata::data {
namespace {
using strata::testing::expect_error;

TextCleanOptions only_normalize(const std::string& form) {
  TextCleanOptions o;
  o.normalization = form;
  o.strip_control = o.collapse_whitespace = false;
  return o;
}

TEST(TextClean, NfcComposesCombiningMarks) {
  EXPECT_EQ(clean_text("caf"
                       "e\u0301",
                       only_normalize("nfc")),
            "caf\u00e9");
  EXPECT_EQ(clean_text("\u212b", only_normalize("nfc")), "\u00c5");  // ANGSTROM SIGN -> A WITH RING
  // NFC keeps compatibility characters.
  EXPECT_EQ(clean_text("\ufb01 \uff11", only_normalize("nfc")), "\ufb01 \uff11");
}

TEST(TextClean, NfkcMapsCompatibilityCharacters) {
  EXPECT_EQ(clean_text("\ufb01ne", only_normalize("nfkc")), "fine");           // LATIN SMALL LIGATURE FI
  EXPECT_EQ(clean_text("\uff11\uff12\uff13", only_normalize("nfkc")), "123");  // FULLWIDTH DIGITS
  EXPECT_EQ(clean_text("e\u0301", only_normalize("nfkc")), "\u00e9");
}

TEST(TextClean, NoneLeavesTextAsIs) {
  const std::string text = "e\u0301 \ufb01 \uff11 \u212b";
  EXPECT_EQ(clean_text(text, only_normalize("none")), text);
}

TEST(TextClean, StripsControlAndFormatCharactersButKeepsNewlineAndTab) {
  TextCleanOptions o;
  o.collapse_whitespace = false;
  EXPECT_EQ(clean_text("a\x07"
                       "b\x1b[0mc",
                       o),
            "ab[0mc");
  EXPECT_EQ(clean_text(std::string("x\0y", 3), o), "xy");
  EXPECT_EQ(clean_text("zero\u200bwidth\ufeff \u00adsoft\u0085", o), "zerowidth soft");  // Cf, Cf, Cf, Cc
  EXPECT_EQ(clean_text("a\tb\nc\x7f", o), "a\tb\nc");
  o.strip_control = false;
  EXPECT_EQ(clean_text("a\x07"
                       "b\u200b",
                       o),
            "a\x07"
            "b\u200b");
}

TEST(TextClean, CarriageReturnsBecomeNewlines) {
  TextCleanOptions o;
  o.collapse_whitespace = false;
  EXPECT_EQ(clean_text("one\r\ntwo\rthree\r\r\nfour\n\r", o), "one\ntwo\nthree\n\nfour\n\n");
  o.strip_control = false;
  EXPECT_EQ(clean_text("one\r\ntwo", o), "one\r\ntwo");
}

TEST(TextClean, CollapsesWhitespaceRunsIncludingSpaceSeparators) {
  TextCleanOptions o;
  EXPECT_EQ(clean_text("a  b\t\tc \t d", o), "a b c d");
  EXPECT_EQ(clean_text("no\u00a0break\u00a0\u00a0here\u3000x", o), "no break here x");  // NBSP, IDEOGRAPHIC SPACE
  EXPECT_EQ(clean_text("trailing  \t\nline\u00a0\n", o), "trailing\nline");
  EXPECT_EQ(clean_text("\t\t-- Author", o), " -- Author");  // leading indentation keeps one space
  o.collapse_whitespace = false;
  EXPECT_EQ(clean_text("a  b\u00a0", o), "a  b\u00a0");
}

TEST(TextClean, BlankLineRules) {
  TextCleanOptions o;
  EXPECT_EQ(clean_text("\n\n  \nfirst\n\n\n\nsecond\n \t \n\nthird\n\n\n", o), "first\n\nsecond\n\nthird");
  EXPECT_EQ(clean_text("a\nb\n\nc", o), "a\nb\n\nc");
  EXPECT_EQ(clean_text("a\r\n\r\n\r\nb\r\n", o), "a\n\nb");
  EXPECT_EQ(clean_text(" \n\t\n\u200b\n", o), "");
  EXPECT_EQ(clean_text("", o), "");
}

TEST(TextClean, InvalidUtf8IsAnErrorWithItsOffset) {
  TextCleanOptions o;
  expect_error(
      [&] {
        clean_text(
            "abc\xff"
            "def",
            o);
      },
      {"invalid UTF-8", "byte offset 3"});
  expect_error([&] { clean_text("\u00e9\xe2\x82", o); }, {"byte offset 2"});     // truncated sequence
  expect_error([&] { clean_text("ok\xc0\xaf", o); }, {"byte offset 2"});         // overlong '/'
  expect_error([&] { clean_text("12345\xed\xa0\x80", o); }, {"byte offset 5"});  // UTF-16 surrogate
}

TEST(TextClean, ReplacesEachInvalidByte) {
  TextCleanOptions o;
  o.replace_invalid_utf8 = true;
  EXPECT_EQ(clean_text("abc\xff"
                       "def",
                       o),
            "abc\ufffd"
            "def");
  EXPECT_EQ(clean_text("\xe2\x82"
                       "A\xc3",
                       o),
            "\ufffd\ufffd"
            "A\ufffd");
  EXPECT_EQ(clean_text("ok \u00e9", o), "ok \u00e9");
}

TEST(TextClean, RejectsUnknownNormalization) {
  TextCleanOptions o;
  o.normalization = "NFD";
  expect_error([&] { validate(o); }, {"'NFD'", "nfkc"});
  expect_error([&] { clean_text("x", o); }, {"'NFD'"});
  for (const char* ok : {"none", "nfc", "nfkc"}) {
    o.normalization = ok;
    EXPECT_NO_THROW(validate(o));
  }
}

// Pieces chosen to interact: combining marks next to stripped and collapsed characters, compatibility characters
// that map to spaces or combining sequences under NFKC (U+00B4), line breaks of every kind, invalid bytes.
std::string random_text(std::mt19937& rng, bool with_invalid) {
  static const std::vector<std::string> pieces = {"a",      "e",
                                                  "Z",      "7",
                                                  ".",      " ",
                                                  "  ",     "\t",
                                                  "\n",     "\n\n",
                                                  "\r",     "\r\n",
                                                  "\u0301", "\u0327",
                                                  "\u0323", "\u200b",
                                                  "\ufeff", "\u00ad",
                                                  "\u0085", "\x07",
                                                  "\x1b",   std::string("\0", 1),
                                                  "\u00a0", "\u3000",
                                                  "\u2028", "\ufb01",
                                                  "\uff11", "\u212b",
                                                  "\u1e9b", "\uff76",
                                                  "\u00b4", "\u00c5",
                                                  "\u00e9", "\U0001F600",
                                                  "\u4e2d"};
  static const std::vector<std::string> invalid = {"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\x80"};
  std::string s;
  const int n = std::uniform_int_distribution<int>(0, 40)(rng);
  for (int i = 0; i < n; ++i) {
    if (with_invalid && rng() % 10 == 0)
      s += invalid[rng() % invalid.size()];
    else
      s += pieces[rng() % pieces.size()];
  }
  return s;
}

TEST(TextClean, IsIdempotentForEveryOptionCombination) {
  std::mt19937 rng(12345);
  for (const char* form : {"none", "nfc", "nfkc"}) {
    for (int flags = 0; flags < 8; ++flags) {
      TextCleanOptions o;
      o.normalization = form;
      o.strip_control = flags & 1;
      o.collapse_whitespace = flags & 2;
      o.replace_invalid_utf8 = flags & 4;
      for (int trial = 0; trial < 300; ++trial) {
        const std::string text = random_text(rng, o.replace_invalid_utf8);
        const std::string once = clean_text(text, o);
        ASSERT_EQ(clean_text(once, o), once) << "form " << form << " flags " << flags << " input '" << text << "'";
      }
    }
  }
}

TEST(TextClean, HandlesAStrippedCharacterBetweenBaseAndCombiningMark) {
  // Stripping runs before NFC, so the mark composes in the first pass and a second pass changes nothing.
  EXPECT_EQ(clean_text("e\u200b\u0301", TextCleanOptions{}), "\u00e9");
}

}  // namespace
}  // namespace strata::data
