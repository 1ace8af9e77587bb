// The directory-listing half of Connection (--directory_listing): a
// directory requested with a trailing slash whose index.html does not exist
// is listed. The listing comes from the worker's ListingCache, or is read
// by a helper thread (BlockingPool: getdents has no io_uring operation)
// while the connection waits in kListing with nothing in the ring.
//
// Completion discipline: the job owns what it read until the worker runs
// its Complete(); the connection takes it only if it is still the same use
// (generation) and still waiting (kListing). A deadline or the drain closes
// a waiting connection at once (CancelInFlight, Abort): its job then finds
// the generation or the state changed and its result is freed with it.
// Runs on the owning worker's thread, like the rest of Connection.
#include <cerrno>
#include <memory>
#include <string>
#include <utility>

#include "sluice/base/check.h"
#include "sluice/http/response.h"
#include "sluice/serve/connection.h"
#include "sluice/serve/connection_host.h"
#include "sluice/serve/document_root.h"

namespace sluice {
namespace {

class ListingJob final : public BlockingJob {
 public:
  ListingJob(ConnectionHost* host, RootFiles* files, Connection* conn, size_t entries_max)
      : host_(host),
        files_(files),
        conn_(conn),
        generation_(conn->generation()),
        entries_max_(entries_max) {
    // Held until this job dies, though its request may end first: the root
    // (and its caches) and the descriptor the helper opens beneath.
    host_->HoldRoot(files_);
    root_ = files_->root().Acquire();
  }
  ~ListingJob() override {
    // On the worker's thread, completed or dropped: nothing outlives it.
    if (!ended_) files_->listings().AbandonRead(&read_);
    files_->root().Release(root_);
    host_->ReleaseRoot(files_);
  }
  ListingCache::Read* read() { return &read_; }

  void Run() noexcept override {
    auto listing = std::make_shared<Listing>();
    error_ = ReadDirectoryListing(root_->fd, read_.key, entries_max_, listing.get());
    if (error_ == 0) listing_ = std::move(listing);
  }

  void Complete() noexcept override {
    if (listing_ != nullptr) {
      files_->listings().EndRead(&read_, listing_, host_->loop().now_ns());
    } else {
      files_->listings().AbandonRead(&read_);
    }
    ended_ = true;
    conn_->OnListingRead(generation_, std::move(listing_), error_);
  }

 private:
  ConnectionHost* const host_;
  RootFiles* const files_;
  Connection* const conn_;  // Pooled: outlives the job; checked by generation.
  const uint32_t generation_;
  const size_t entries_max_;
  RootGeneration* root_ = nullptr;
  ListingCache::Read read_;
  bool ended_ = false;  // read_ was offered or abandoned.
  // Written by Run() on a helper thread, read by Complete() after it: the
  // pool's mutex orders the two.
  std::shared_ptr<const Listing> listing_;
  int error_ = 0;
};

}  // namespace

void Connection::StartListing() {
  const std::string& key = rs_->lookup.resolved.relative;
  RootFiles* files = rs_->lookup.files;
  if (std::shared_ptr<const Listing> hit = files->listings().Find(key, host_->loop().now_ns())) {
    RespondListing(*hit);
    return;
  }
  BlockingPool* pool = host_->blocking_pool();
  auto job = std::make_unique<ListingJob>(host_, files, this,
                                          host_->config().directory_listing_entries_max);
  // Watched before the read starts: a change while it runs is reported.
  files->listings().BeginRead(key, job->read());
  if (!pool->Submit(std::move(job))) {
    // Every helper busy and the queue full (or no helpers at all): say so
    // rather than read the directory on this thread.
    RespondError(503, !rs_->response.keep_alive, "Retry-After: 1\r\n");
    return;
  }
  state_ = State::kListing;
}

void Connection::OnListingRead(uint32_t generation, std::shared_ptr<const Listing> listing,
                               int error) {
  if (generation != generation_ || state_ != State::kListing) return;  // Gone: freed by the job.
  SLUICE_CHECK(rs_ != nullptr && !io_op_.in_flight,
               "a connection waiting for a listing has its request and nothing in the ring");
  // Deadlines and the drain close a waiting connection at once; should one
  // ever leave it waiting, it ends here, the result taken and dropped.
  if (EndIfInterrupted()) return;
  if (listing == nullptr) {
    RespondError(StatusForOpenError(error), !rs_->response.keep_alive);
    return;
  }
  RespondListing(*listing);
}

void Connection::RespondListing(const Listing& listing) {
  const Request& r = rs_->input.parser.request();
  const std::string& relative = rs_->lookup.resolved.relative;
  const std::string url_path = relative.empty() ? std::string("/") : "/" + relative + "/";
  const bool json = PrefersJson(r.field(Field::kAccept), r.has(Field::kAccept));
  const std::string body = json ? RenderListingJson(listing, url_path)
                                : RenderListingHtml(listing, url_path, relative.empty());
  BeginResponse(200);
  AppendStatusAndCommon(&rs_->tx.out, Common(200));
  AppendField(&rs_->tx.out, "Content-Type", json ? "application/json" : "text/html; charset=utf-8");
  AppendFieldUint(&rs_->tx.out, "Content-Length", body.size());
  // No validators: a listing is rebuilt when the directory changes, so a
  // cache must ask again each time (RFC 9111 §5.2.2.4) and gets it whole.
  AppendField(&rs_->tx.out, "Cache-Control", "no-cache");
  AppendField(&rs_->tx.out, "Vary", "Accept");
  AppendField(&rs_->tx.out, "X-Content-Type-Options", "nosniff");
  FinishHead();
  if (!rs_->response.head_only) rs_->tx.out.append(body);
  AddMemorySegment(0);
  host_->metrics().listings_served_total.Add();
  SendSegments();
}

}  // namespace sluice
