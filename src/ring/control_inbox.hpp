// ControlInbox: the mailbox for control messages (registrations, listener binds and unbinds, route snapshots,
// connection hand-offs), which must never be lost.
//
// The bounded SPSC mailboxes (spsc_queue.hpp) refuse a message when full, which is right for traffic that can push
// back, and wrong for control: an unbind that is dropped leaves a listener open, a hand-off that is dropped loses a
// tunnel connection. Control messages are heap objects linked into an unbounded intrusive queue instead, so a post
// always succeeds; what bounds them is the rate of the events behind them (handshakes, registrations), which the
// gateway bounds where they enter.
//
// The queue is Dmitry Vyukov's intrusive multi-producer single-consumer queue: a push is one atomic exchange and one
// store (wait-free, from any thread, loop or not); the consumer pops in push order. Between a producer's exchange
// and its store the newest message is not yet reachable: pop() then returns null and empty() reports "not empty",
// so the consumer's loop runs another turn instead of sleeping, and finds it then.
// Ownership: a message belongs to the inbox from push() until pop() hands it to the consumer, which deletes it.
// Thread rules: push() from any thread; pop(), empty() and the destructor on the consumer's thread.
#pragma once

#include <atomic>

namespace ringtun::ring {

class Loop;

// A control message: subclass it (ring/post.hpp's post_owned does it for any type) and post it to a loop.
class ControlMessage {
 public:
  ControlMessage() = default;
  ControlMessage(const ControlMessage&) = delete;
  ControlMessage& operator=(const ControlMessage&) = delete;
  virtual ~ControlMessage() = default;
  // Runs on the target loop's thread, once; the message is deleted right after.
  virtual void run(Loop& loop) noexcept = 0;

 private:
  friend class ControlInbox;
  std::atomic<ControlMessage*> next_{nullptr};
};

class ControlInbox {
 public:
  ControlInbox() = default;
  ControlInbox(const ControlInbox&) = delete;
  ControlInbox& operator=(const ControlInbox&) = delete;
  // Messages never popped (the loop stopped first) are deleted: their destructors free what they own.
  ~ControlInbox() {
    while (ControlMessage* message = pop()) delete message;
  }

  void push(ControlMessage* message) noexcept {
    message->next_.store(nullptr, std::memory_order_relaxed);
    ControlMessage* prev = tail_.exchange(message, std::memory_order_acq_rel);
    prev->next_.store(message, std::memory_order_release);
  }

  // The oldest message, or null when there is none (or the newest is still being linked: see above).
  ControlMessage* pop() noexcept {
    ControlMessage* head = head_;
    ControlMessage* next = head->next_.load(std::memory_order_acquire);
    if (head == &stub_) {
      if (next == nullptr) return nullptr;
      head_ = next;
      head = next;
      next = next->next_.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      head_ = next;
      return head;
    }
    // `head` is the last message linked so far. Only when no producer is mid-push may it be taken: the stub goes
    // behind it so the queue never becomes empty of nodes.
    if (tail_.load(std::memory_order_acquire) != head) return nullptr;
    push(&stub_);
    next = head->next_.load(std::memory_order_acquire);
    if (next == nullptr) return nullptr;
    head_ = next;
    return head;
  }

  // False when something was pushed and not popped yet, including a push still in progress.
  bool empty() const noexcept {
    return head_ == &stub_ && stub_.next_.load(std::memory_order_acquire) == nullptr &&
           tail_.load(std::memory_order_acquire) == &stub_;
  }

 private:
  class Stub final : public ControlMessage {
    void run(Loop&) noexcept override {}
  };
  Stub stub_;
  alignas(64) ControlMessage* head_ = &stub_;              // consumer side
  alignas(64) std::atomic<ControlMessage*> tail_{&stub_};  // producers exchange here
};

}  // namespace ringtun::ring
