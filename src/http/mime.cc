#include "sluice/http/mime.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sluice {
namespace {

struct MimeEntry {
  std::string_view ext;  // Lower case.
  std::string_view type;
};

constexpr std::string_view kUtf8Html = "text/html; charset=utf-8";

// Sorted by extension (checked by a static_assert below) for binary search.
constexpr MimeEntry kMimeTable[] = {
    {"3g2", "video/3gpp2"},
    {"3gp", "video/3gpp"},
    {"3gpp", "video/3gpp"},
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"ai", "application/postscript"},
    {"apng", "image/apng"},
    {"appcache", "text/cache-manifest; charset=utf-8"},
    {"asf", "video/x-ms-asf"},
    {"asx", "video/x-ms-asf"},
    {"atom", "application/atom+xml"},
    {"avi", "video/x-msvideo"},
    {"avif", "image/avif"},
    {"bin", "application/octet-stream"},
    {"bmp", "image/bmp"},
    {"cco", "application/x-cocoa"},
    {"crt", "application/x-x509-ca-cert"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"deb", "application/octet-stream"},
    {"der", "application/x-x509-ca-cert"},
    {"dll", "application/octet-stream"},
    {"dmg", "application/octet-stream"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"ear", "application/java-archive"},
    {"eot", "application/vnd.ms-fontobject"},
    {"eps", "application/postscript"},
    {"epub", "application/epub+zip"},
    {"exe", "application/octet-stream"},
    {"flac", "audio/flac"},
    {"flv", "video/x-flv"},
    {"geojson", "application/geo+json"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"hqx", "application/mac-binhex40"},
    {"htc", "text/x-component; charset=utf-8"},
    {"htm", kUtf8Html},
    {"html", kUtf8Html},
    {"ico", "image/x-icon"},
    {"ics", "text/calendar; charset=utf-8"},
    {"img", "application/octet-stream"},
    {"iso", "application/octet-stream"},
    {"jad", "text/vnd.sun.j2me.app-descriptor; charset=utf-8"},
    {"jar", "application/java-archive"},
    {"jardiff", "application/x-java-archive-diff"},
    {"jng", "image/x-jng"},
    {"jnlp", "application/x-java-jnlp-file"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"jxl", "image/jxl"},
    {"kar", "audio/midi"},
    {"kml", "application/vnd.google-earth.kml+xml"},
    {"kmz", "application/vnd.google-earth.kmz"},
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"m4a", "audio/x-m4a"},
    {"m4v", "video/x-m4v"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mid", "audio/midi"},
    {"midi", "audio/midi"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mml", "text/mathml; charset=utf-8"},
    {"mng", "video/x-mng"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpeg", "video/mpeg"},
    {"mpg", "video/mpeg"},
    {"msi", "application/octet-stream"},
    {"msm", "application/octet-stream"},
    {"msp", "application/octet-stream"},
    {"odg", "application/vnd.oasis.opendocument.graphics"},
    {"odp", "application/vnd.oasis.opendocument.presentation"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdb", "application/x-pilot"},
    {"pdf", "application/pdf"},
    {"pem", "application/x-x509-ca-cert"},
    {"pl", "application/x-perl"},
    {"pm", "application/x-perl"},
    {"png", "image/png"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"prc", "application/x-pilot"},
    {"ps", "application/postscript"},
    {"ra", "audio/x-realaudio"},
    {"rar", "application/x-rar-compressed"},
    {"rpm", "application/x-redhat-package-manager"},
    {"rss", "application/rss+xml"},
    {"rtf", "application/rtf"},
    {"run", "application/x-makeself"},
    {"sea", "application/x-sea"},
    {"shtml", kUtf8Html},
    {"sit", "application/x-stuffit"},
    {"svg", "image/svg+xml"},
    {"svgz", "image/svg+xml"},
    {"swf", "application/x-shockwave-flash"},
    {"tar", "application/x-tar"},
    {"tcl", "application/x-tcl"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"tk", "application/x-tcl"},
    {"ts", "video/mp2t"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"war", "application/java-archive"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"wbmp", "image/vnd.wap.wbmp"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"wml", "text/vnd.wap.wml; charset=utf-8"},
    {"wmlc", "application/vnd.wap.wmlc"},
    {"wmv", "video/x-ms-wmv"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"xml", "text/xml; charset=utf-8"},
    {"xpi", "application/x-xpinstall"},
    {"xspf", "application/xspf+xml"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
};

constexpr bool IsSorted() {
  for (size_t i = 1; i < std::size(kMimeTable); ++i) {
    if (!(kMimeTable[i - 1].ext < kMimeTable[i].ext)) return false;
  }
  return true;
}
static_assert(IsSorted(), "kMimeTable must be sorted by extension, without duplicates");

// Extension (lower case) → type, from --mime_types. Written once at start-up.
std::map<std::string, std::string, std::less<>>& Overrides() {
  static auto* overrides = new std::map<std::string, std::string, std::less<>>();
  return *overrides;
}

}  // namespace

absl::Status ParseMimeTypes(std::string_view text) {
  std::map<std::string, std::string, std::less<>> parsed;
  // Tokenise: words, with ';' '{' '}' as separators of their own.
  std::vector<std::string> tokens;
  std::string current;
  bool in_comment = false;
  for (char c : text) {
    if (in_comment) {
      if (c == '\n') in_comment = false;
      continue;
    }
    if (c == '#' || c == ';' || c == '{' || c == '}' ||
        std::isspace(static_cast<unsigned char>(c))) {
      if (!current.empty()) tokens.push_back(std::move(current));
      current.clear();
      if (c == '#') in_comment = true;
      if (c == ';' || c == '{' || c == '}') tokens.emplace_back(1, c);
      continue;
    }
    current.push_back(c);
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  size_t i = 0;
  if (tokens.size() >= 2 && tokens[0] == "types" && tokens[1] == "{") i = 2;
  while (i < tokens.size()) {
    if (tokens[i] == "}") {
      ++i;
      continue;
    }
    std::string type = tokens[i++];
    if (type == ";" || type == "{" || type.find('/') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("mime types: expected a type, got '", type, "'"));
    }
    if (type.rfind("text/", 0) == 0 && type.find(';') == std::string::npos) {
      type += "; charset=utf-8";
    }
    bool terminated = false;
    while (i < tokens.size()) {
      const std::string& t = tokens[i++];
      if (t == ";") {
        terminated = true;
        break;
      }
      if (t == "{" || t == "}") break;
      std::string ext = t;
      for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      parsed[ext] = type;
    }
    if (!terminated) {
      return absl::InvalidArgumentError(absl::StrCat("mime types: missing ';' after '", type, "'"));
    }
  }
  Overrides() = std::move(parsed);
  return absl::OkStatus();
}

absl::Status LoadMimeTypes(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --mime_types file '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  absl::Status st = ParseMimeTypes(text.str());
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
  return absl::OkStatus();
}

std::string_view MimeTypeForExtension(std::string_view ext) {
  std::array<char, 16> lower{};
  if (ext.empty() || ext.size() > lower.size()) return kDefaultMimeType;
  for (size_t i = 0; i < ext.size(); ++i) {
    const char c = ext[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  const std::string_view key(lower.data(), ext.size());
  const auto& overrides = Overrides();
  if (!overrides.empty()) {
    if (auto it = overrides.find(key); it != overrides.end()) return it->second;
  }
  const auto* end = std::end(kMimeTable);
  const auto* it =
      std::lower_bound(std::begin(kMimeTable), end, key,
                       [](const MimeEntry& e, std::string_view k) { return e.ext < k; });
  if (it != end && it->ext == key) return it->type;
  return kDefaultMimeType;
}

std::string_view MimeTypeForPath(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return kDefaultMimeType;
  return MimeTypeForExtension(name.substr(dot + 1));
}

}  // namespace sluice
