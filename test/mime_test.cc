// Unit tests for the extension → Content-Type table.
#include "sluice/http/mime.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace sluice {
namespace {

constexpr std::string_view kHtml = "text/html; charset=utf-8";
constexpr std::string_view kJs = "text/javascript; charset=utf-8";
constexpr std::string_view kOctet = "application/octet-stream";

struct PathCase {
  std::string_view path;
  std::string_view type;
};

TEST(MimeTypeForPathTest, Table) {
  const PathCase kCases[] = {
      {"index.html", kHtml},
      {"index.htm", kHtml},
      {"page.shtml", kHtml},
      {"INDEX.HTML", kHtml},
      {"style.css", "text/css; charset=utf-8"},
      {"app.js", kJs},
      {"module.mjs", kJs},
      {"data.json", "application/json"},
      {"image.png", "image/png"},
      {"photo.jpg", "image/jpeg"},
      {"photo.JPG", "image/jpeg"},
      {"photo.Jpeg", "image/jpeg"},
      {"photo.jpeg", "image/jpeg"},
      {"icon.svg", "image/svg+xml"},
      {"app.wasm", "application/wasm"},
      {"font.woff2", "font/woff2"},
      {"font.woff", "font/woff"},
      {"picture.avif", "image/avif"},
      {"picture.webp", "image/webp"},
      {"site.webmanifest", "application/manifest+json"},
      {"readme.txt", "text/plain; charset=utf-8"},
      {"doc.pdf", "application/pdf"},
      {"clip.mp4", "video/mp4"},
      {"favicon.ico", "image/x-icon"},
      {"archive.tar.gz", "application/gzip"},
      {"archive.tar", "application/x-tar"},
      {"archive.zip", "application/zip"},
      {"dir/sub/page.html", kHtml},
      {"/abs/path/app.js", kJs},
      {"a.b.c.css", "text/css; charset=utf-8"},
      // Unknown or absent extensions.
      {"file.unknownext", kOctet},
      {"file.xyz", kOctet},
      {"Makefile", kOctet},
      {"", kOctet},
      {".bashrc", kOctet},
      {"dir/.bashrc", kOctet},
      {".html", kOctet},  // A dotfile named ".html", not an HTML file.
      {"a.", kOctet},
      {"dir.d/file", kOctet},
      {"dir.html/", kOctet},
      {"dir.html/file", kOctet},
      {"file.averyveryverylongextension", kOctet},
      {"file.html.bak", kOctet},
  };
  for (const PathCase& c : kCases) {
    SCOPED_TRACE(testing::PrintToString(std::string(c.path)));
    EXPECT_EQ(MimeTypeForPath(c.path), c.type);
  }
}

TEST(MimeTypeForExtensionTest, Table) {
  const PathCase kCases[] = {
      {"html", kHtml},
      {"HTML", kHtml},
      {"Htm", kHtml},
      {"js", kJs},
      {"MJS", kJs},
      {"css", "text/css; charset=utf-8"},
      {"JPG", "image/jpeg"},
      {"wasm", "application/wasm"},
      {"gz", "application/gzip"},
      {"", kOctet},
      {".html", kOctet},
      {"html ", kOctet},
      {"nope", kOctet},
      {"webmanifestx", kOctet},
      {"abcdefghijklmnopq", kOctet},  // Longer than any extension in the table.
  };
  for (const PathCase& c : kCases) {
    SCOPED_TRACE(testing::PrintToString(std::string(c.path)));
    EXPECT_EQ(MimeTypeForExtension(c.path), c.type);
  }
}

// Every text type the server labels carries a charset; binary types do not.
TEST(MimeTypeForExtensionTest, TextTypesCarryCharset) {
  for (std::string_view ext : {"html", "css", "js", "txt", "csv", "md", "xml", "ics"}) {
    SCOPED_TRACE(ext);
    const std::string_view type = MimeTypeForExtension(ext);
    EXPECT_TRUE(type.starts_with("text/")) << type;
    EXPECT_TRUE(type.ends_with("; charset=utf-8")) << type;
  }
  for (std::string_view ext : {"png", "wasm", "woff2", "gz", "json"}) {
    SCOPED_TRACE(ext);
    EXPECT_EQ(MimeTypeForExtension(ext).find("charset"), std::string_view::npos);
  }
}

TEST(MimeTypeTest, DefaultConstant) { EXPECT_EQ(kDefaultMimeType, kOctet); }

// Overrides are process-wide: every test starts and ends without any.
class MimeOverrideTest : public testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ParseMimeTypes("").ok()); }
  void TearDown() override { EXPECT_TRUE(ParseMimeTypes("").ok()); }
};

TEST_F(MimeOverrideTest, NginxFormatOverridesAndExtends) {
  const absl::Status st = ParseMimeTypes(
      "# comment line\n"
      "types {\n"
      "    application/x-custom   cust CUST2;  # trailing comment\n"
      "    text/x-readme          readme;\n"
      "    image/png              html;\n"
      "}\n");
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(MimeTypeForExtension("cust"), "application/x-custom");
  EXPECT_EQ(MimeTypeForExtension("CUST"), "application/x-custom");
  EXPECT_EQ(MimeTypeForExtension("cust2"), "application/x-custom");
  EXPECT_EQ(MimeTypeForPath("dir/file.Cust2"), "application/x-custom");
  EXPECT_EQ(MimeTypeForPath("a/README.readme"), "text/x-readme; charset=utf-8");
  EXPECT_EQ(MimeTypeForPath("index.html"), "image/png");  // Override beats built-in.
  EXPECT_EQ(MimeTypeForPath("index.htm"), kHtml);         // Others stay built-in.
  EXPECT_EQ(MimeTypeForPath("x.unknown"), kOctet);
}

TEST_F(MimeOverrideTest, WithoutTypesBlock) {
  const absl::Status st = ParseMimeTypes("application/x-a a;\ntext/plain\tlog conf ;");
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(MimeTypeForExtension("a"), "application/x-a");
  EXPECT_EQ(MimeTypeForExtension("log"), "text/plain; charset=utf-8");
  EXPECT_EQ(MimeTypeForExtension("conf"), "text/plain; charset=utf-8");
}

TEST_F(MimeOverrideTest, ReplacesEarlierOverrides) {
  ASSERT_TRUE(ParseMimeTypes("application/x-a aaa;").ok());
  ASSERT_TRUE(ParseMimeTypes("application/x-b bbb;").ok());
  EXPECT_EQ(MimeTypeForExtension("aaa"), kOctet);
  EXPECT_EQ(MimeTypeForExtension("bbb"), "application/x-b");
  ASSERT_TRUE(ParseMimeTypes("").ok());
  EXPECT_EQ(MimeTypeForExtension("bbb"), kOctet);
}

TEST_F(MimeOverrideTest, Errors) {
  const std::string_view kCases[] = {
      "text/html html",            // Missing ';'.
      "types { text/html html }",  // Missing ';' before '}'.
      "html;",                     // No type.
      "nottype html;",             // Not type/subtype.
      "; text/html html;",         // Stray ';'.
      "{ text/html html; }",       // Block without "types".
  };
  for (std::string_view text : kCases) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(ParseMimeTypes(text).ok());
  }
}

TEST_F(MimeOverrideTest, FailedParseKeepsBuiltIns) {
  EXPECT_FALSE(ParseMimeTypes("image/png html").ok());
  EXPECT_EQ(MimeTypeForExtension("html"), kHtml);
}

TEST_F(MimeOverrideTest, LoadFromFile) {
  const std::string path = testing::TempDir() + "/sluice_mime_test.types";
  {
    std::ofstream f(path);
    f << "types {\n  application/x-from-file fromfile;\n}\n";
  }
  const absl::Status st = LoadMimeTypes(path);
  std::remove(path.c_str());
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(MimeTypeForExtension("fromfile"), "application/x-from-file");
}

TEST_F(MimeOverrideTest, LoadMissingFile) {
  const absl::Status st = LoadMimeTypes(testing::TempDir() + "/sluice_no_such_file.types");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
}

}  // namespace
}  // namespace sluice
