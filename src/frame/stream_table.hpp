// Per-stream protocol state and the containers that hold it: a slab of Stream slots addressed by
// (index, generation), an open-addressed StreamId -> slot index, and intrusive lists threaded through the slots.
//
// The slab grows in fixed chunks up to a capacity set at construction; slots never move, so a Stream& stays valid
// across slab growth (not across the stream being freed: re-check the handle after any callback). Growth allocates
// at most capacity/kChunk times in a session's life, never per frame.
// Ownership: the Session owns one StreamTable; nothing outside frame/ sees a Stream.
// Thread rules: one core's thread; no sharing.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/assert.hpp"
#include "frame/flow.hpp"
#include "frame/wire.hpp"

namespace ringtun::frame {

inline constexpr std::uint32_t kNoIndex = 0xffffffffU;

// What the I/O layer holds to name a stream. Stale handles (the stream was freed, the slot reused) are detected
// by the generation and answered with Errc::kNotFound.
struct StreamHandle {
  std::uint32_t index = kNoIndex;
  std::uint32_t generation = 0;
  bool valid() const noexcept { return index != kNoIndex; }
  friend bool operator==(const StreamHandle&, const StreamHandle&) = default;
};

// Protocol state, local point of view (docs/protocol.md "Stream states"). kPending is local only: we allocated the
// id but OPEN is waiting for the peer's SETTINGS or a concurrency slot. kResetPending is local only too: we reset the
// stream and its RST waits for the next batch; the handler already saw on_closed, so no handle reaches the slot, but
// the slot stays allocated (and counted against concurrency, as the peer still sees the stream open) until the RST is
// encoded. The order matters: every state above kResetPending is a stream handles may name (Stream::live()).
enum class StreamState : std::uint8_t {
  kFree,
  kResetPending,
  kPending,
  kOpen,
  kHalfClosedLocal,   // we sent FIN
  kHalfClosedRemote,  // peer sent FIN
};

// Which list Stream::queue_link is on.
enum class StreamQueue : std::uint8_t {
  kNone,
  kOpen,     // awaiting OPEN
  kClosing,  // both sides sent FIN: freed at the end of this batch
  kReset,    // reset pending: RST goes out in the next batch, then the slot is freed
};

struct ListLink {
  std::uint32_t prev = kNoIndex;
  std::uint32_t next = kNoIndex;
  bool linked = false;
};

struct Stream {
  // Identity.
  StreamId id = 0;
  std::uint32_t generation = 1;
  StreamState state = StreamState::kFree;
  bool local = false;        // we opened it
  bool open_sent = false;    // our OPEN was encoded (local streams) / always true for peer streams
  bool fin_queued = false;   // the I/O layer closed its sending side; FIN goes out after the queued data
  bool fin_sent = false;     // our FIN was encoded
  StreamQueue queue_kind = StreamQueue::kNone;  // which list queue_link is on
  bool sent_anything = false;
  std::uint64_t user = 0;

  // Send side: a FIFO of caller buffer segments (indices into the session's segment pool).
  std::uint32_t seg_head = kNoIndex;
  std::uint32_t seg_tail = kNoIndex;
  std::uint64_t queued_bytes = 0;
  std::int64_t deficit = 0;  // deficit round-robin credit
  bool has_quantum = false;
  SendWindow send;

  // Receive side.
  ReceiveWindow recv;
  std::uint32_t unconsumed = 0;  // delivered to the handler, not yet reported consumed

  // OPEN metadata for a local stream until its OPEN is encoded.
  std::uint16_t open_len = 0;
  std::uint8_t open_fin = 0;
  std::array<std::byte, kMaxOpenPayload> open_payload{};

  // Intrusive list memberships: at most one of {open, closing, reset} queue at a time, so they share a link.
  ListLink active_link;   // DRR rotation: has data (or a FIN) and credit
  ListLink credit_link;   // WINDOW_UPDATE due
  ListLink queue_link;    // open, closing or reset queue (queue_kind says which)
  std::uint32_t next_free = kNoIndex;

  // Cold, kept last so the fields the data path touches keep their place in the slot.
  ErrorCode rst_code = ErrorCode::kNoError;  // the RST to send (kResetPending)
  std::uint64_t opened_us = 0;               // when the peer's OPEN was received (peer streams; rapid-reset age)

  // Allocated and not yet ended as far as the handler knows (not free, not reset-pending).
  bool live() const noexcept { return state > StreamState::kResetPending; }
  bool sending_closed() const noexcept { return fin_queued || fin_sent; }
  bool receiving_closed() const noexcept { return state == StreamState::kHalfClosedRemote; }
};

class StreamTable {
 public:
  static constexpr std::uint32_t kChunk = 32;

  explicit StreamTable(std::uint32_t capacity);

  std::uint32_t capacity() const noexcept { return capacity_; }
  // Allocated slots, reset-pending ones included.
  std::uint32_t live() const noexcept { return live_; }
  // Slots created so far (for scans): indices [0, created()).
  std::uint32_t created() const noexcept { return created_; }
  // Slots of the id index: small while few streams are bound, at most twice the capacity (rounded up).
  std::size_t index_slots() const noexcept { return ids_.size(); }

  Stream& at(std::uint32_t index) noexcept { return chunks_[index / kChunk][index % kChunk]; }
  const Stream& at(std::uint32_t index) const noexcept { return chunks_[index / kChunk][index % kChunk]; }

  // The live stream `h` names, or nullptr (also for a reset-pending slot: its handle went stale with on_closed).
  Stream* get(StreamHandle h) noexcept {
    if (h.index >= created_) return nullptr;
    Stream& s = at(h.index);
    return (s.live() && s.generation == h.generation) ? &s : nullptr;
  }
  const Stream* get(StreamHandle h) const noexcept {
    if (h.index >= created_) return nullptr;
    const Stream& s = at(h.index);
    return (s.live() && s.generation == h.generation) ? &s : nullptr;
  }
  StreamHandle handle(std::uint32_t index) const noexcept { return {index, at(index).generation}; }

  // A free slot reset to defaults with state kPending (caller sets the real state), or kNoIndex at capacity.
  std::uint32_t allocate() noexcept;
  void release(std::uint32_t index) noexcept;

  // StreamId -> index of a live stream.
  std::uint32_t find(StreamId id) const noexcept;
  void bind(StreamId id, std::uint32_t index) noexcept;
  void unbind(StreamId id) noexcept;

 private:
  struct IdEntry {
    StreamId id = 0;  // 0 = empty (stream 0 is the connection, never a key)
    std::uint32_t index = kNoIndex;
  };
  // Fibonacci hashing on the high bits: ids of one side share their low bit, so the low bits hash poorly.
  std::size_t slot_of(StreamId id) const noexcept { return static_cast<std::uint32_t>(id * 0x9E3779B1U) >> shift_; }
  void rehash(std::size_t slots);
  static constexpr std::size_t kInitialSlots = 16;

  std::uint32_t capacity_;
  std::uint32_t created_ = 0;
  std::uint32_t live_ = 0;
  std::uint32_t free_head_ = kNoIndex;
  std::size_t max_slots_;  // the id index's size at `capacity_` streams bound
  std::size_t bound_ = 0;  // ids bound
  std::vector<std::unique_ptr<Stream[]>> chunks_;
  std::vector<IdEntry> ids_;
  std::size_t mask_ = 0;
  int shift_ = 31;
};

// A doubly linked list of stream indices threaded through one ListLink member of Stream.
template <ListLink Stream::*kLink>
class StreamList {
 public:
  bool empty() const noexcept { return head_ == kNoIndex; }
  std::uint32_t front() const noexcept { return head_; }
  std::uint32_t size() const noexcept { return size_; }
  static bool contains(const Stream& s) noexcept { return (s.*kLink).linked; }

  void push_back(StreamTable& t, std::uint32_t index) noexcept {
    ListLink& l = t.at(index).*kLink;
    RINGTUN_ASSERT(!l.linked, "StreamList: already linked");
    l = ListLink{tail_, kNoIndex, true};
    if (tail_ != kNoIndex) (t.at(tail_).*kLink).next = index; else head_ = index;
    tail_ = index;
    ++size_;
  }
  void remove(StreamTable& t, std::uint32_t index) noexcept {
    ListLink& l = t.at(index).*kLink;
    if (!l.linked) return;
    if (l.prev != kNoIndex) (t.at(l.prev).*kLink).next = l.next; else head_ = l.next;
    if (l.next != kNoIndex) (t.at(l.next).*kLink).prev = l.prev; else tail_ = l.prev;
    l = ListLink{};
    --size_;
  }
  std::uint32_t pop_front(StreamTable& t) noexcept {
    std::uint32_t index = head_;
    if (index != kNoIndex) remove(t, index);
    return index;
  }
  // Moves the head to the tail (one DRR turn).
  void rotate(StreamTable& t) noexcept {
    if (head_ == tail_) return;
    std::uint32_t index = pop_front(t);
    push_back(t, index);
  }

 private:
  std::uint32_t head_ = kNoIndex;
  std::uint32_t tail_ = kNoIndex;
  std::uint32_t size_ = 0;
};

}  // namespace ringtun::frame
