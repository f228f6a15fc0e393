// StreamTable (see stream_table.hpp).
#include "frame/stream_table.hpp"

#include <algorithm>
#include <bit>
#include <utility>

namespace ringtun::frame {

StreamTable::StreamTable(std::uint32_t capacity)
    : capacity_(capacity), max_slots_(std::bit_ceil(static_cast<std::size_t>(capacity) * 2 + 2)) {
  // The id index starts small and doubles with the streams bound (load factor <= 1/2 keeps linear probing short),
  // up to what the capacity needs: an idle connection holds a few hundred bytes, not a table for every stream it
  // may ever have at once (512 KiB at the agent's limits).
  rehash(std::min(max_slots_, kInitialSlots));
}

void StreamTable::rehash(std::size_t slots) {
  std::vector<IdEntry> old = std::exchange(ids_, std::vector<IdEntry>(slots));
  mask_ = slots - 1;
  shift_ = 32 - std::countr_zero(slots);
  for (const IdEntry& e : old) {
    if (e.id == 0) continue;
    std::size_t i = slot_of(e.id);
    while (ids_[i].id != 0) i = (i + 1) & mask_;
    ids_[i] = e;
  }
}

std::uint32_t StreamTable::allocate() noexcept {
  std::uint32_t index = free_head_;
  if (index != kNoIndex) {
    free_head_ = at(index).next_free;
  } else {
    if (created_ >= capacity_) return kNoIndex;
    if (created_ % kChunk == 0) chunks_.push_back(std::make_unique<Stream[]>(kChunk));
    index = created_++;
  }
  Stream& s = at(index);
  std::uint32_t generation = s.generation;
  s = Stream{};
  s.generation = generation;
  s.state = StreamState::kPending;
  ++live_;
  return index;
}

void StreamTable::release(std::uint32_t index) noexcept {
  Stream& s = at(index);
  RINGTUN_CHECK(s.state != StreamState::kFree, "StreamTable: double release");
  s.state = StreamState::kFree;
  ++s.generation;  // every handle to this slot is stale from now on
  s.next_free = free_head_;
  free_head_ = index;
  --live_;
}

std::uint32_t StreamTable::find(StreamId id) const noexcept {
  if (id == 0) return kNoIndex;
  for (std::size_t i = slot_of(id);; i = (i + 1) & mask_) {
    const IdEntry& e = ids_[i];
    if (e.id == id) return e.index;
    if (e.id == 0) return kNoIndex;
  }
}

void StreamTable::bind(StreamId id, std::uint32_t index) noexcept {
  RINGTUN_CHECK(id != 0, "StreamTable: stream 0 is the connection");
  // Grows on a stream's open (the control path, amortized: only past the connection's high-water mark).
  if ((bound_ + 1) * 2 > ids_.size() && ids_.size() < max_slots_) rehash(ids_.size() * 2);
  ++bound_;
  for (std::size_t i = slot_of(id);; i = (i + 1) & mask_) {
    IdEntry& e = ids_[i];
    RINGTUN_CHECK(e.id != id, "StreamTable: id bound twice");
    if (e.id == 0) {
      e = IdEntry{id, index};
      return;
    }
  }
}

void StreamTable::unbind(StreamId id) noexcept {
  std::size_t i = slot_of(id);
  for (;; i = (i + 1) & mask_) {
    if (ids_[i].id == id) break;
    if (ids_[i].id == 0) return;
  }
  --bound_;
  // Backward-shift deletion: no tombstones, so lookups stay short however many streams come and go.
  std::size_t hole = i;
  for (std::size_t j = (hole + 1) & mask_; ids_[j].id != 0; j = (j + 1) & mask_) {
    std::size_t home = slot_of(ids_[j].id);
    // Move j into the hole unless its home lies cyclically in (hole, j].
    bool home_between = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_between) {
      ids_[hole] = ids_[j];
      hole = j;
    }
  }
  ids_[hole] = IdEntry{};
}

}  // namespace ringtun::frame
