// post_owned: sends a heap-allocated message to another core's loop and runs `handle` on it there.
//
// For control-plane messages (registrations, hand-offs) that carry strings or fds: allocation is fine at that rate,
// and ownership is explicit: the message belongs to the mailbox once posted and is deleted after `handle` returns
// (or, if the target loop stops before running it, when that loop is destroyed).
// If the mailbox is full the message comes back to the caller (Err), which must dispose of what it owns (e.g. fds).
// Thread rules: call on the posting loop's thread.
#pragma once

#include <memory>

#include "ring/loop.hpp"

namespace ringtun::ring {

template <typename Message>
Result<void> post_owned(Loop& from, unsigned target, std::unique_ptr<Message>& message,
                        void (*handle)(Loop& loop, Message& message)) noexcept {
  CrossCoreTask task;
  task.fn = [](Loop& loop, const CrossCoreTask& t) {
    std::unique_ptr<Message> owned(static_cast<Message*>(t.object));
    auto fn = reinterpret_cast<void (*)(Loop&, Message&)>(t.arg0);
    fn(loop, *owned);
  };
  task.drop = [](const CrossCoreTask& t) { delete static_cast<Message*>(t.object); };
  task.object = message.get();
  task.arg0 = reinterpret_cast<std::uint64_t>(handle);
  RINGTUN_TRY(from.post(target, task));
  (void)message.release();
  return {};
}

}  // namespace ringtun::ring
