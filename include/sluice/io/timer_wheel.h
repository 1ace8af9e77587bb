// Intrusive lists and a one-second timing wheel for connection deadlines.
// A deadline is set or moved in O(1); each tick visits only the buckets of
// the seconds that passed, never every connection. Owned and touched by one
// worker thread.
#ifndef SLUICE_IO_TIMER_WHEEL_H_
#define SLUICE_IO_TIMER_WHEEL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice {

struct ListNode {
  ListNode* prev = nullptr;
  ListNode* next = nullptr;
  void* owner = nullptr;
  bool linked() const { return next != nullptr; }
};

// Circular doubly-linked list with a sentinel; nodes are not owned.
class IntrusiveList {
 public:
  IntrusiveList() { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const { return head_.next == &head_; }
  size_t size() const { return size_; }
  ListNode* front() const { return empty() ? nullptr : head_.next; }
  void PushBack(ListNode* n) {
    n->prev = head_.prev;
    n->next = &head_;
    head_.prev->next = n;
    head_.prev = n;
    ++size_;
  }
  void Remove(ListNode* n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = nullptr;
    --size_;
  }

 private:
  ListNode head_;
  size_t size_ = 0;
};

struct TimerNode : ListNode {
  int64_t deadline_s = 0;
};

class TimerWheel {
 public:
  // Buckets of one second; deadlines further out than this wrap around and
  // are simply looked at again one revolution later.
  static constexpr int64_t kBuckets = 1024;

  explicit TimerWheel(int64_t now_s) : buckets_(kBuckets), processed_s_(now_s) {}

  // (Re)arms `n` for `deadline_s` (monotonic seconds).
  void Schedule(TimerNode* n, int64_t deadline_s) {
    if (n->linked()) {
      if (n->deadline_s == deadline_s) return;
      Bucket(n->deadline_s).Remove(n);
    }
    // A deadline already due fires at the next Advance.
    if (deadline_s <= processed_s_) deadline_s = processed_s_ + 1;
    n->deadline_s = deadline_s;
    Bucket(deadline_s).PushBack(n);
  }
  void Cancel(TimerNode* n) {
    if (n->linked()) Bucket(n->deadline_s).Remove(n);
  }
  // Calls expire(node) for every node whose deadline is <= now_s; the node
  // is unlinked before the call, and the callback may re-arm it.
  template <typename F>
  void Advance(int64_t now_s, F&& expire) {
    while (processed_s_ < now_s) {
      ++processed_s_;
      IntrusiveList& bucket = Bucket(processed_s_);
      // Nodes re-armed during this pass land in later buckets (their
      // deadline is > processed_s_), so this loop ends.
      for (size_t n = bucket.size(); n > 0 && !bucket.empty(); --n) {
        auto* node = static_cast<TimerNode*>(bucket.front());
        bucket.Remove(node);
        if (node->deadline_s > processed_s_) {
          bucket.PushBack(node);  // A later revolution.
          continue;
        }
        expire(node);
      }
    }
  }

 private:
  IntrusiveList& Bucket(int64_t s) { return buckets_[static_cast<size_t>(s % kBuckets)]; }

  std::vector<IntrusiveList> buckets_;
  int64_t processed_s_;
};

}  // namespace sluice

#endif  // SLUICE_IO_TIMER_WHEEL_H_
