// Connection, configuration half (issue 12): the site a request is for, the
// rules that fit it, and what they do to the response: redirects, CORS
// preflights and fields, header edits. On the owning worker's thread.
#include <string>

#include "sluice/base/check.h"
#include "sluice/http/header_edits.h"
#include "sluice/http/path.h"
#include "sluice/serve/connection.h"
#include "sluice/serve/connection_host.h"
#include "sluice/serve/sites.h"

namespace sluice {

void Connection::ClearRules() {
  rs_->lookup.rules.Clear();
  rs_->response.error_page = false;
  rs_->response.cors_fields.clear();
}

bool Connection::ApplySiteAndRules() {
  FileLookup& l = rs_->lookup;
  // A new configuration reaches a request at its start only; one pointer
  // comparison in the steady state, no reference count touched.
  if (l.generation.get() != &host_->generation()) l.generation = host_->generation_ptr();
  const Request& r = rs_->input.parser.request();
  // An absolute-form target's authority names the site, not Host (RFC 9112
  // §3.2.2).
  l.site = &l.generation->Select(l.resolved.authority.empty() ? r.field(Field::kHost)
                                                              : l.resolved.authority);
  SLUICE_CHECK(l.files == nullptr, "a request takes its root once");
  l.files = host_->UseRoot(l.site->root_index);
  if (l.site->rules.empty()) return false;
  l.match_path.assign("/").append(l.resolved.relative);
  if (l.resolved.trailing_slash && !l.resolved.relative.empty()) l.match_path.push_back('/');
  MatchRules(*l.site, l.match_path, r.method_text, &l.rules);
  if (!l.rules.any) return false;
  const bool get_or_head = r.method == Method::kGet || r.method == Method::kHead;
  if (r.method == Method::kOptions && l.rules.cors != nullptr) {
    const CorsPolicy::Preflight p =
        l.rules.cors->ForPreflight(r.field(Field::kOrigin),
                                   r.has(Field::kAccessControlRequestMethod)
                                       ? std::optional(r.field(Field::kAccessControlRequestMethod))
                                       : std::nullopt,
                                   r.field(Field::kAccessControlRequestHeaders));
    if (p.kind == CorsPolicy::Preflight::Kind::kAllowed) {
      RespondPreflight(p.headers);
      return true;
    }
    // Not a preflight, or refused: an ordinary OPTIONS answer, with the
    // fields an actual request gets (Vary: Origin at least).
  }
  if (l.rules.cors != nullptr) {
    rs_->response.cors_fields = l.rules.cors->ForActualRequest(r.field(Field::kOrigin));
  }
  if (get_or_head && l.rules.redirect != nullptr) {
    RespondRuleRedirect();
    return true;
  }
  if (get_or_head && l.rules.clean_urls == CleanUrls::kRedirect && !l.resolved.trailing_slash &&
      l.match_path.ends_with(".html")) {
    RespondCleanRedirect();
    return true;
  }
  return false;
}

void Connection::RespondCleanRedirect() {
  // The canonical form: /about.html → /about, /dir/index.html → /dir/.
  const FileLookup& l = rs_->lookup;
  std::string_view path = l.resolved.relative;
  if (path == "index.html" || path.ends_with("/index.html")) {
    path.remove_suffix(std::string_view("index.html").size());
  } else {
    path.remove_suffix(std::string_view(".html").size());
  }
  std::string location = "Location: /";
  location.append(EncodePath(path));
  if (l.resolved.has_query) location.append("?").append(l.resolved.query);
  location.append("\r\n");
  RespondError(301, !rs_->response.keep_alive, location);
}

void Connection::RespondRuleRedirect() {
  const FileLookup& l = rs_->lookup;
  std::string location = "Location: ";
  location.append(RedirectTarget(*l.rules.redirect, *l.rules.redirect_match, l.match_path,
                                 l.resolved.has_query ? l.resolved.query : std::string_view()));
  location.append("\r\n");
  RespondError(l.rules.redirect->status, !rs_->response.keep_alive, location);
}

void Connection::RespondPreflight(const std::vector<HeaderField>& fields) {
  BeginResponse(204);
  AppendStatusAndCommon(&rs_->tx.out, Common(204));
  for (const HeaderField& f : fields) AppendField(&rs_->tx.out, f.name, f.value);
  FinishHead();
  AddMemorySegment(0);
  SendSegments();
}

void Connection::ApplyRuleHeaders() {
  const FileLookup& l = rs_->lookup;
  const int status = rs_->response.status;
  const HeaderEdits* edits[kRulesPerSiteMax];
  size_t n = 0;
  // As nginx's add_header: successes and redirects, and the configured
  // error pages; the server's own error answers keep their few fields.
  if (l.rules.header_rules > 0 && ((status >= 200 && status < 400) || rs_->response.error_page)) {
    n = CollectHeaderEdits(*l.site, l.rules, edits);
  }
  if (n == 0 && rs_->response.cors_fields.empty()) return;
  std::string& out = rs_->tx.out;
  const size_t old_len = rs_->response.head_len;
  RewriteHead(std::string_view(out.data(), old_len), std::span(edits, n), rs_->response.cors_fields,
              status == 304              ? HeadKind::kNotModified
              : rs_->response.error_page ? HeadKind::kErrorPage
                                         : HeadKind::kNormal,
              &rs_->tx.head_scratch);
  const size_t new_len = rs_->tx.head_scratch.size();
  out.replace(0, old_len, rs_->tx.head_scratch);
  rs_->response.head_len = new_len;
  // The head is the start of the first memory segment; every later memory
  // segment moves with the bytes after it.
  for (ResponseSegment& seg : rs_->tx.segments) {
    if (seg.from_file) continue;
    if (seg.offset == 0) {
      seg.length = seg.length + new_len - old_len;
    } else {
      SLUICE_CHECK(seg.offset >= old_len, "memory segments after the head start after it");
      seg.offset = seg.offset + new_len - old_len;
    }
  }
}

}  // namespace sluice
