// Invariant checks, TigerBeetle style: a broken invariant on the data path is
// a crash with a message naming it, never silent corruption.
//
//   SLUICE_CHECK(cond, "what must hold")   always on (release included): for
//                                          invariants whose violation would
//                                          send wrong bytes or leak a resource.
//   SLUICE_DCHECK(cond, "what must hold")  on in debug, sanitizer and `tiny`
//                                          builds (NDEBUG unset, or
//                                          SLUICE_TINY_RESOURCES): for checks
//                                          that cost a syscall or a walk.
// Any thread.
#ifndef SLUICE_BASE_CHECK_H_
#define SLUICE_BASE_CHECK_H_

namespace sluice {

// Logs "invariant broken: WHAT (COND) at FILE:LINE" and aborts.
[[noreturn]] void CheckFailed(const char* what, const char* cond, const char* file, int line);

#if !defined(NDEBUG) || defined(SLUICE_TINY_RESOURCES) || defined(SLUICE_CHAOS)
inline constexpr bool kDchecksOn = true;
#else
inline constexpr bool kDchecksOn = false;
#endif

}  // namespace sluice

#define SLUICE_CHECK(cond, what)                                                                \
  do {                                                                                          \
    if (__builtin_expect(!(cond), 0)) ::sluice::CheckFailed((what), #cond, __FILE__, __LINE__); \
  } while (0)

#define SLUICE_DCHECK(cond, what)                               \
  do {                                                          \
    if (::sluice::kDchecksOn && __builtin_expect(!(cond), 0))   \
      ::sluice::CheckFailed((what), #cond, __FILE__, __LINE__); \
  } while (0)

#endif  // SLUICE_BASE_CHECK_H_
