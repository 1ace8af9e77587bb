#include "sluice/serve/file_plan.h"

#include "sluice/http/mime.h"
#include "sluice/http/range.h"

namespace sluice {
namespace {

void AppendContentRange(std::string* out, uint64_t first, uint64_t last, uint64_t size) {
  out->append("Content-Range: bytes ");
  out->append(std::to_string(first)).append("-").append(std::to_string(last));
  out->append("/").append(std::to_string(size)).append("\r\n");
}

// Appends a memory segment for out[begin, end of out), if not empty.
void AddMemory(const std::string& out, size_t begin, std::vector<ResponseSegment>* segments) {
  if (out.size() > begin) segments->push_back(ResponseSegment{begin, out.size() - begin, false});
}

class Planner {
 public:
  Planner(const FilePlanInput& in, std::string* out, std::vector<ResponseSegment>* segments)
      : in_(in), out_(out), segments_(segments) {}

  FilePlan Plan();

 private:
  void StartHead(int status);
  void FinishHead();
  void Error(int status, std::string_view extra);
  void NotModified();
  void Representation(std::string* out) const;
  void Body(const RangeSet& ranges);
  void Multipart(const RangeSet& ranges);

  const FilePlanInput& in_;
  std::string* out_;
  std::vector<ResponseSegment>* segments_;
  std::string etag_;  // With the coding's suffix.
  FilePlan plan_;
};

FilePlan Planner::Plan() {
  out_->clear();
  segments_->clear();
  etag_.assign(in_.file.etag);
  if (in_.coding != Coding::kIdentity && !etag_.empty()) {
    // A distinct validator per encoding (RFC 9110 §8.8.3).
    etag_.insert(etag_.size() - 1, CodingEtagSuffix(in_.coding));
  }
  const Request& r = *in_.request;
  if (in_.status != 0) {
    Body(RangeSet());
    return plan_;
  }
  const Validators validators{etag_, static_cast<time_t>(in_.file.mtime_sec)};
  switch (EvaluatePreconditions(r, validators)) {
    case Precondition::kProceed:
      break;
    case Precondition::kNotModified:
      NotModified();
      return plan_;
    case Precondition::kPreconditionFailed:
      Error(412, {});
      return plan_;
  }
  RangeSet ranges;
  if (r.has(Field::kRange) &&
      (!r.has(Field::kIfRange) || IfRangeAllowsRange(r.field(Field::kIfRange), validators))) {
    ranges = ParseRange(r.field(Field::kRange), in_.file.size, in_.max_ranges);
  }
  if (ranges.kind == RangeSet::Kind::kUnsatisfiable) {
    Error(416, "Content-Range: bytes */" + std::to_string(in_.file.size) + "\r\n");
    return plan_;
  }
  Body(ranges);
  return plan_;
}

void Planner::StartHead(int status) {
  plan_.status = status;
  CommonFields common = in_.common;
  common.status = status;
  AppendStatusAndCommon(out_, common);
}

void Planner::FinishHead() {
  EndHead(out_);
  plan_.head_len = out_->size();
}

void Planner::Error(int status, std::string_view extra) {
  plan_.status = status;
  CommonFields common = in_.common;
  common.status = status;
  plan_.head_len = AppendErrorResponse(out_, common, in_.head_only, extra);
  AddMemory(*out_, 0, segments_);
}

void Planner::NotModified() {
  // A 304 carries the validators and the fields a 200 would have had that
  // caches use (RFC 9110 §15.4.5), and no body.
  StartHead(304);
  Representation(out_);
  FinishHead();
  AddMemory(*out_, 0, segments_);
}

void Planner::Representation(std::string* out) const {
  AppendField(out, "Last-Modified", in_.file.last_modified);
  AppendField(out, "ETag", etag_);
  if (!in_.cache_control.empty()) AppendField(out, "Cache-Control", in_.cache_control);
  // Every response for a file may differ by Accept-Encoding once siblings
  // are in play, compressed or not (RFC 9110 §12.5.5).
  if (in_.precompressed) AppendField(out, "Vary", "Accept-Encoding");
}

void Planner::Body(const RangeSet& ranges) {
  const uint64_t size = in_.file.size;
  const bool partial = ranges.kind == RangeSet::Kind::kSatisfiable;
  StartHead(in_.status != 0 ? in_.status : partial ? 206 : 200);
  uint64_t offset = 0;
  uint64_t length = size;
  if (!partial && in_.coding == Coding::kIdentity && in_.file.full_fields != nullptr) {
    // The common case: the same fields as the last whole-file 200 of this
    // file (the path is the file's own here, so the same Content-Type).
    std::string& fields = *in_.file.full_fields;
    if (fields.empty()) {
      Representation(&fields);
      AppendField(&fields, "Accept-Ranges", "bytes");
      AppendField(&fields, "Content-Type", MimeTypeForPath(in_.path));
      AppendFieldUint(&fields, "Content-Length", size);
    }
    out_->append(fields);
  } else {
    Representation(out_);
    AppendField(out_, "Accept-Ranges", "bytes");
    if (in_.coding != Coding::kIdentity)
      AppendField(out_, "Content-Encoding", CodingToken(in_.coding));
    if (partial && ranges.count > 1) {
      Multipart(ranges);
      return;
    }
    AppendField(out_, "Content-Type", MimeTypeForPath(in_.path));
    if (partial) {
      offset = ranges.ranges[0].first;
      length = ranges.ranges[0].length;
      AppendContentRange(out_, offset, ranges.ranges[0].last(), size);
    }
    AppendFieldUint(out_, "Content-Length", length);
  }
  FinishHead();
  if (!in_.head_only && length > 0 && in_.file.content != nullptr) {
    // Small files go out with their head in one SEND, straight from memory.
    out_->append(*in_.file.content, offset, length);
  } else if (!in_.head_only && length > 0) {
    AddMemory(*out_, 0, segments_);
    segments_->push_back(ResponseSegment{offset, length, true});
    plan_.uses_file = true;
    return;
  }
  AddMemory(*out_, 0, segments_);
}

// multipart/byteranges (RFC 9110 §14.6): each part has its own Content-Type
// and Content-Range; part bodies come from memory or from the file.
void Planner::Multipart(const RangeSet& ranges) {
  const uint64_t size = in_.file.size;
  const std::string_view type = MimeTypeForPath(in_.path);
  char boundary[17];
  for (int i = 0; i < 16; ++i) boundary[i] = "0123456789abcdef"[(in_.random >> (i * 4)) & 15];
  boundary[16] = '\0';
  // Part heads first, to know the Content-Length.
  std::string parts;
  size_t part_ends[kMaxRangesLimit + 1];
  uint64_t body_bytes = 0;
  for (size_t i = 0; i < ranges.count; ++i) {
    parts.append("\r\n--").append(boundary).append("\r\n");
    parts.append("Content-Type: ").append(type).append("\r\n");
    AppendContentRange(&parts, ranges.ranges[i].first, ranges.ranges[i].last(), size);
    parts.append("\r\n");
    part_ends[i] = parts.size();
    body_bytes += ranges.ranges[i].length;
  }
  parts.append("\r\n--").append(boundary).append("--\r\n");
  part_ends[ranges.count] = parts.size();
  out_->append("Content-Type: multipart/byteranges; boundary=").append(boundary).append("\r\n");
  AppendFieldUint(out_, "Content-Length", parts.size() + body_bytes);
  FinishHead();
  if (in_.head_only) {
    AddMemory(*out_, 0, segments_);
    return;
  }
  if (in_.file.content != nullptr) {
    // Small file: parts and their bytes are assembled in memory.
    for (size_t i = 0; i < ranges.count; ++i) {
      const size_t head_begin = i == 0 ? 0 : part_ends[i - 1];
      out_->append(parts, head_begin, part_ends[i] - head_begin);
      out_->append(*in_.file.content, ranges.ranges[i].first, ranges.ranges[i].length);
    }
    out_->append(parts, part_ends[ranges.count - 1], std::string::npos);
    AddMemory(*out_, 0, segments_);
    return;
  }
  const size_t base = out_->size();  // Part offsets count from the head's end.
  out_->append(parts);
  segments_->push_back(ResponseSegment{0, base + part_ends[0], false});
  for (size_t i = 0; i < ranges.count; ++i) {
    segments_->push_back(ResponseSegment{ranges.ranges[i].first, ranges.ranges[i].length, true});
    segments_->push_back(
        ResponseSegment{base + part_ends[i], part_ends[i + 1] - part_ends[i], false});
  }
  plan_.uses_file = true;
}

}  // namespace

FilePlan PlanFileResponse(const FilePlanInput& in, std::string* out,
                          std::vector<ResponseSegment>* segments) {
  return Planner(in, out, segments).Plan();
}

}  // namespace sluice
