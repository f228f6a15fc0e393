// TrafficTable: one core's counters per service, for /metrics, the admin API and the access log.
//
// A service is counted under who owns it and what it is called: (token, agent id, service name), so its counters
// carry on across an agent's reconnects and route snapshots. Each entry holds the StreamTraffic a stream is filed
// under (tunnel_conn.hpp: streams and bytes, kept up to date while the stream lives), the public connections refused
// for it, and HTTP responses by status class. Entries are made on the core's thread, on a service's first connection,
// and never move or go away (chunks of kChunk; at most kMaxEntries per core: past that, new services share one
// overflow entry named "_other", so an agent that renames its services in a loop cannot grow memory without bound).
//
// The admin core reads other cores' tables: size() is published with release after an entry's labels are written,
// the labels never change after, and the counters are Counters. Lookups from the data path go through a per-snapshot
// cache indexed by the route's position in the table: O(1), no allocation except on a snapshot's first use of a route.
// Thread rules: slot()/refused_for() on the owning core's thread; size()/at() from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/counter.hpp"
#include "route/route.hpp"
#include "tunnel/tunnel_conn.hpp"

namespace ringtun::gateway {

struct TrafficEntry {
  std::uint32_t token = 0;  // index of the token in the gateway's config
  std::string agent;
  std::string service;
  route::Kind kind = route::Kind::kTcp;
  std::uint16_t port = 0;  // tcp
  std::string host;        // http / tls key
  tunnel::StreamTraffic traffic;
  Counter refused;                      // public connections for this service that got no stream
  std::array<Counter, 6> http_status;   // [1] 1xx .. [5] 5xx, requests answered for this service
};

class TrafficTable {
 public:
  static constexpr std::size_t kChunk = 256;
  static constexpr std::size_t kMaxEntries = 16 * 1024;

  TrafficTable();
  ~TrafficTable();
  TrafficTable(const TrafficTable&) = delete;
  TrafficTable& operator=(const TrafficTable&) = delete;

  // The entry of `route` (a route of `table`, the snapshot the caller holds now).
  TrafficEntry& entry(const route::Table& table, const route::Route& route);

  std::size_t size() const noexcept { return size_.load(std::memory_order_acquire); }
  const TrafficEntry& at(std::size_t index) const noexcept { return chunks_[index / kChunk][index % kChunk]; }

 private:
  std::uint32_t index_of(const route::Route& route);  // finds or adds
  TrafficEntry& mutable_at(std::size_t index) noexcept { return chunks_[index / kChunk][index % kChunk]; }

  std::array<std::unique_ptr<TrafficEntry[]>, kMaxEntries / kChunk> chunks_;
  std::atomic<std::size_t> size_{0};
  std::unordered_map<std::string, std::uint32_t> by_key_;  // "token\0agent\0service" -> index
  const route::Table* cached_table_ = nullptr;  // the snapshot route_index_ is for
  std::uint64_t cached_version_ = UINT64_MAX;
  std::vector<std::uint32_t> route_index_;      // by route position in that snapshot; UINT32_MAX = not looked up
};

}  // namespace ringtun::gateway
