#include "sluice/http/field_syntax.h"

#include <array>

namespace sluice {
namespace {

// tchar from RFC 9110 §5.6.2.
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kToken = MakeTokenTable();

}  // namespace

bool IsHttpToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!kToken[c]) return false;
  }
  return true;
}

bool IsHttpFieldValue(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  if (!s.empty()) {
    const char first = s.front();
    const char last = s.back();
    if (first == ' ' || first == '\t' || last == ' ' || last == '\t') return false;
  }
  return true;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

int ParseQValue(std::string_view q) {
  if (q.empty() || q.size() > 5) return -1;
  if (q[0] != '0' && q[0] != '1') return -1;
  int value = (q[0] - '0') * 1000;
  if (q.size() > 1) {
    if (q[1] != '.') return -1;
    int scale = 100;
    for (size_t i = 2; i < q.size(); ++i, scale /= 10) {
      if (q[i] < '0' || q[i] > '9') return -1;
      value += (q[i] - '0') * scale;
    }
  }
  return value > 1000 ? -1 : value;
}

bool ParseWeightedElement(std::string_view element, bool other_params, std::string_view* value,
                          int* q) {
  *q = 1000;
  const size_t semi = element.find(';');
  *value = TrimOws(element.substr(0, semi));
  std::string_view rest =
      semi == std::string_view::npos ? std::string_view() : element.substr(semi + 1);
  if (semi != std::string_view::npos && TrimOws(rest).empty()) return other_params;
  while (!rest.empty()) {
    const size_t next = rest.find(';');
    std::string_view param = TrimOws(rest.substr(0, next));
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos || !EqualsIgnoreCase(TrimOws(param.substr(0, eq)), "q")) {
      if (!other_params) return false;
      continue;
    }
    *q = ParseQValue(TrimOws(param.substr(eq + 1)));
    if (*q < 0) return false;
  }
  return true;
}

}  // namespace sluice
