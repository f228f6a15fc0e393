#include "gateway/traffic_table.hpp"

#include <cstdint>

namespace ringtun::gateway {

TrafficTable::TrafficTable() = default;
TrafficTable::~TrafficTable() = default;

TrafficEntry& TrafficTable::entry(const route::Table& table, const route::Route& route) {
  if (&table != cached_table_ || table.version() != cached_version_) {
    cached_table_ = &table;
    cached_version_ = table.version();
    route_index_.assign(table.size(), UINT32_MAX);
  }
  // Compared as integers: subtracting pointers into different arrays is undefined.
  const auto first = reinterpret_cast<std::uintptr_t>(table.routes().data());
  const auto at_route = reinterpret_cast<std::uintptr_t>(&route);
  const std::size_t position = (at_route - first) / sizeof(route::Route);
  if (at_route < first || position >= route_index_.size()) return mutable_at(index_of(route));  // not `table`'s
  std::uint32_t& index = route_index_[position];
  if (index == UINT32_MAX) index = index_of(route);
  return mutable_at(index);
}

std::uint32_t TrafficTable::index_of(const route::Route& route) {
  std::string key = std::to_string(route.owner.token);
  key.push_back('\0');
  key += route.owner.agent_id;
  key.push_back('\0');
  key += route.service;
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  std::size_t index = size_.load(std::memory_order_relaxed);
  const bool overflow = index + 1 >= kMaxEntries;  // the last entry is the overflow one
  if (overflow) {
    index = kMaxEntries - 1;
    if (size_.load(std::memory_order_relaxed) == kMaxEntries) return static_cast<std::uint32_t>(index);
  }
  if (!chunks_[index / kChunk]) chunks_[index / kChunk] = std::make_unique<TrafficEntry[]>(kChunk);
  TrafficEntry& entry = chunks_[index / kChunk][index % kChunk];
  entry.token = route.owner.token;
  entry.agent = overflow ? std::string("_other") : route.owner.agent_id;
  entry.service = overflow ? std::string("_other") : route.service;
  entry.kind = route.key.kind;
  entry.port = route.key.port;
  entry.host = overflow ? std::string() : route.key.host;
  if (!overflow) by_key_.emplace(std::move(key), static_cast<std::uint32_t>(index));
  size_.store(index + 1, std::memory_order_release);
  return static_cast<std::uint32_t>(index);
}

}  // namespace ringtun::gateway
