#include "sluice/serve/directory_listing.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <queue>

#include "nlohmann/json.hpp"
#include "sluice/http/field_syntax.h"

namespace sluice {
namespace {

long OpenBeneath(int root_fd, const std::string& path, uint64_t flags) {
  open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof(how));
}

// What `name` in the directory is, as a request would find it: false when
// it is not to be listed (a symlink leaving the root or dangling, not a
// regular file or directory).
bool StatEntry(int root_fd, int dir_fd, std::string_view relative, const std::string& name,
               ListingEntry* e) {
  struct stat st = {};
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  if (S_ISLNK(st.st_mode)) {
    // The kernel's containment, from the root, as OPENAT2 of a request.
    std::string path(relative);
    if (!path.empty()) path.push_back('/');
    path.append(name);
    const long fd = OpenBeneath(root_fd, path, O_PATH);
    if (fd < 0) return false;
    const int rc = fstat(static_cast<int>(fd), &st);
    close(static_cast<int>(fd));
    if (rc != 0) return false;
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return false;
  e->name = name;
  e->directory = S_ISDIR(st.st_mode);
  e->size = e->directory ? 0 : static_cast<uint64_t>(st.st_size);
  e->mtime_sec = st.st_mtim.tv_sec;
  return true;
}

struct ByName {
  bool operator()(const ListingEntry& a, const ListingEntry& b) const { return a.name < b.name; }
};

// "2021-03-04 05:06:07" (HTML) or "2021-03-04T05:06:07Z" (JSON), UTC.
std::string FormatTime(int64_t seconds, bool rfc3339) {
  const time_t t = static_cast<time_t>(seconds);
  struct tm tm = {};
  gmtime_r(&t, &tm);
  char buf[32];
  snprintf(buf, sizeof(buf),
           rfc3339 ? "%04d-%02d-%02dT%02d:%02d:%02dZ" : "%04d-%02d-%02d %02d:%02d:%02d",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

// "999 B", "1.5 KiB", "12.0 MiB".
std::string HumanSize(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024;
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  return buf;
}

constexpr std::string_view kHtmlHead =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>\n"
    "body{font-family:system-ui,-apple-system,sans-serif;margin:1rem auto;padding:0 1rem;"
    "max-width:60rem;line-height:1.4}\n"
    "h1{font-size:1.3rem;word-break:break-all}\n"
    "table{border-collapse:collapse;width:100%}\n"
    "th,td{padding:.4rem .5rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\n"
    "td a{word-break:break-all;display:block}\n"
    ".s{text-align:right;white-space:nowrap}\n"
    ".m{white-space:nowrap;color:#555}\n"
    ".notice{background:#fff3cd;padding:.5rem}\n"
    "@media (max-width:36rem){.m{display:none}}\n"
    "</style>\n";

void AppendRow(std::string* out, const ListingEntry& e) {
  out->append("<tr><td><a href=\"");
  AppendPercentEncoded(out, e.name);
  if (e.directory) out->push_back('/');
  out->append("\">");
  AppendHtmlEscaped(out, e.name);
  if (e.directory) out->push_back('/');
  out->append("</a></td>");
  if (e.directory) {
    out->append("<td class=\"s\">-</td>");
  } else {
    out->append("<td class=\"s\" title=\"").append(std::to_string(e.size));
    out->append(e.size == 1 ? " byte\">" : " bytes\">");
    out->append(HumanSize(e.size)).append("</td>");
  }
  out->append("<td class=\"m\">").append(FormatTime(e.mtime_sec, false)).append("</td></tr>\n");
}

// The weight `accept` gives to type/subtype: that of its most specific
// matching media range (RFC 9110 §12.5.1), 0 when none matches.
int AcceptWeight(std::string_view accept, std::string_view type, std::string_view subtype) {
  int best_q = 0;
  int best_specificity = -1;
  std::string_view rest = accept;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = TrimOws(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    std::string_view range;
    int q = 0;
    if (item.empty() || !ParseWeightedElement(item, /*other_params=*/true, &range, &q)) continue;
    const size_t slash = range.find('/');
    if (slash == std::string_view::npos) continue;
    const std::string_view t = TrimOws(range.substr(0, slash));
    const std::string_view s = TrimOws(range.substr(slash + 1));
    int specificity = -1;
    if (t == "*" && s == "*") {
      specificity = 0;
    } else if (EqualsIgnoreCase(t, type) && s == "*") {
      specificity = 1;
    } else if (EqualsIgnoreCase(t, type) && EqualsIgnoreCase(s, subtype)) {
      specificity = 2;
    }
    if (specificity > best_specificity) {
      best_specificity = specificity;
      best_q = q;
    }
  }
  return best_q;
}

}  // namespace

size_t Listing::bytes() const {
  size_t n = sizeof(Listing) + entries.capacity() * sizeof(ListingEntry);
  for (const ListingEntry& e : entries) n += e.name.capacity();
  return n;
}

bool ListableName(std::string_view name) {
  if (name.empty() || name[0] == '.') return false;
  size_t i = 0;
  while (i < name.size()) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    // UTF-8 (RFC 3629 §4): lead byte, then 1-3 continuation bytes, no
    // overlong forms, no surrogates, nothing above U+10FFFF.
    int len = 0;
    uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(len) > name.size()) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(name[i + static_cast<size_t>(k)]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0)) {
      return false;  // Overlong, out of range, a surrogate, or a C1 control.
    }
    i += static_cast<size_t>(len);
  }
  return true;
}

int ReadDirectoryListing(int root_fd, std::string_view relative, size_t entries_max, Listing* out) {
  *out = Listing();
  const std::string path = relative.empty() ? std::string(".") : std::string(relative);
  const long fd = OpenBeneath(root_fd, path, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
  if (fd < 0) return errno;
  DIR* dir = fdopendir(static_cast<int>(fd));
  if (dir == nullptr) {
    const int err = errno;
    close(static_cast<int>(fd));
    return err;
  }
  // The first `entries_max` by name, kept in a max-heap: memory bounded by
  // the cap however many entries the directory holds.
  std::priority_queue<ListingEntry, std::vector<ListingEntry>, ByName> kept;
  int err = 0;
  for (;;) {
    errno = 0;
    const dirent* d = readdir(dir);
    if (d == nullptr) {
      err = errno;
      break;
    }
    const std::string name(d->d_name);
    if (name[0] == '.') continue;  // ".", "..", dotfiles: hidden, not counted.
    ListingEntry e;
    if (!ListableName(name) || !StatEntry(root_fd, dirfd(dir), relative, name, &e)) {
      ++out->skipped;
      continue;
    }
    ++out->total;
    if (kept.size() < entries_max) {
      kept.push(std::move(e));
    } else if (entries_max > 0 && e.name < kept.top().name) {
      kept.pop();
      kept.push(std::move(e));
    }
  }
  closedir(dir);
  if (err != 0) return err;
  out->entries.resize(kept.size());
  for (size_t i = kept.size(); i > 0; --i) {
    out->entries[i - 1] = kept.top();
    kept.pop();
  }
  out->truncated = out->total > out->entries.size();
  return 0;
}

std::string RenderListingHtml(const Listing& listing, std::string_view url_path, bool at_root) {
  std::string out(kHtmlHead);
  out.reserve(out.size() + 512 + listing.entries.size() * 160);
  out.append("<title>Index of ");
  AppendHtmlEscaped(&out, url_path);
  out.append("</title>\n</head>\n<body>\n<h1>Index of ");
  AppendHtmlEscaped(&out, url_path);
  out.append("</h1>\n");
  if (listing.truncated) {
    out.append("<p class=\"notice\">Showing the first ")
        .append(std::to_string(listing.entries.size()))
        .append(" of ")
        .append(std::to_string(listing.total))
        .append(" entries, by name.</p>\n");
  }
  out.append(
      "<table>\n<thead><tr><th>Name</th><th class=\"s\">Size</th>"
      "<th class=\"m\">Modified (UTC)</th></tr></thead>\n<tbody>\n");
  if (!at_root) {
    out.append(
        "<tr><td><a href=\"../\">../</a></td><td class=\"s\">-</td><td class=\"m\"></td></tr>\n");
  }
  for (const ListingEntry& e : listing.entries) AppendRow(&out, e);
  out.append("</tbody>\n</table>\n</body>\n</html>\n");
  return out;
}

std::string RenderListingJson(const Listing& listing, std::string_view url_path) {
  using Json = nlohmann::ordered_json;
  Json entries = Json::array();
  for (const ListingEntry& e : listing.entries) {
    entries.push_back({{"name", e.name},
                       {"type", e.directory ? "directory" : "file"},
                       {"size", e.size},
                       {"mtime", FormatTime(e.mtime_sec, true)}});
  }
  const Json j = {{"path", std::string(url_path)},
                  {"entries", std::move(entries)},
                  {"total", listing.total},
                  {"truncated", listing.truncated}};
  // Names were checked to be UTF-8; replace rather than throw regardless.
  std::string out = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  out.push_back('\n');
  return out;
}

bool PrefersJson(std::string_view accept, bool present) {
  if (!present) return false;
  return AcceptWeight(accept, "application", "json") > AcceptWeight(accept, "text", "html");
}

void AppendHtmlEscaped(std::string* out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '<':
        out->append("&lt;");
        break;
      case '>':
        out->append("&gt;");
        break;
      case '&':
        out->append("&amp;");
        break;
      case '"':
        out->append("&quot;");
        break;
      case '\'':
        out->append("&#39;");
        break;
      default:
        out->push_back(c);
    }
  }
}

void AppendPercentEncoded(std::string* out, std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char ch : segment) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

}  // namespace sluice
