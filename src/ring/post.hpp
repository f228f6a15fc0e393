// post_owned: sends a heap-allocated message to a loop and runs `handle` on it there, on the control path.
//
// For control-plane messages (registrations, hand-offs, listener binds, route snapshots) that carry strings, fds or
// snapshots: allocation is fine at that rate, and a post never fails (see control_inbox.hpp). Ownership is explicit:
// the message belongs to the inbox once posted and is deleted after `handle` returns, or, if the target loop stops
// before running it, when that loop is destroyed: a message that owns resources (an fd) frees them in its
// destructor, so nothing leaks either way.
// Thread rules: post_owned on the posting loop's thread; deliver_owned from any thread.
#pragma once

#include <memory>

#include "ring/loop.hpp"

namespace ringtun::ring {

namespace detail {
template <typename Message>
class OwnedMessage final : public ControlMessage {
 public:
  OwnedMessage(std::unique_ptr<Message> message, void (*handle)(Loop& loop, Message& message))
      : message_(std::move(message)), handle_(handle) {}
  void run(Loop& loop) noexcept override { handle_(loop, *message_); }

 private:
  std::unique_ptr<Message> message_;
  void (*handle_)(Loop&, Message&);
};
}  // namespace detail

template <typename Message>
void post_owned(Loop& from, unsigned target, std::unique_ptr<Message> message,
                void (*handle)(Loop& loop, Message& message)) noexcept {
  from.post_control(target, std::make_unique<detail::OwnedMessage<Message>>(std::move(message), handle));
}

template <typename Message>
void deliver_owned(Loop& target, std::unique_ptr<Message> message, void (*handle)(Loop& loop, Message& message)) noexcept {
  target.deliver(std::make_unique<detail::OwnedMessage<Message>>(std::move(message), handle));
}

}  // namespace ringtun::ring
