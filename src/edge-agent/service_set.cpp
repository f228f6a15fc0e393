// ServiceSet, SlotBook, TrafficSlots: see service_set.hpp.
#include "edge-agent/service_set.hpp"

#include <algorithm>

#include "tunnel/upstream_pool.hpp"

namespace ringtun::agent {

namespace {

static_assert(kMaxServiceSlots == 1U << tunnel::UpstreamPool::kKeyIndexBits,
              "a slot must fill the index bits of an upstream key exactly");

}  // namespace

bool same_local(const app::ServiceConfig& a, const app::ServiceConfig& b) {
  return a.local_text == b.local_text && a.proxy_protocol == b.proxy_protocol;
}

tunnel::ServiceDecl declare(const app::ServiceConfig& config, std::string_view group) {
  const bool tcp = config.kind == route::Kind::kTcp;
  return tunnel::ServiceDecl{config.name,       config.kind,      tcp ? config.public_port : std::uint16_t{0},
                             tcp ? "" : config.host, config.allow_from, config.deny_from, std::string(group)};
}

std::string public_to_local(const app::ServiceConfig& config) {
  const std::string from = config.kind == route::Kind::kTcp
                               ? "gateway port " + std::to_string(config.public_port)
                               : std::string(route::kind_name(config.kind)) + " " + config.host;
  return from + " -> " + config.local_text;
}

const AgentService* ServiceSet::find(std::string_view name) const noexcept {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                             [](const auto& entry, std::string_view key) { return entry.first < key; });
  if (it == by_name_.end() || it->first != name) return nullptr;
  return &services_[it->second];
}

ServiceDiff diff_services(const ServiceSet& before, const ServiceSet& after) {
  ServiceDiff diff;
  for (std::size_t i = 0; i < before.size(); ++i) {
    if (after.find(before[i].config.name) == nullptr) diff.removed.push_back(i);
  }
  for (std::size_t i = 0; i < after.size(); ++i) {
    const AgentService& now = after[i];
    const AgentService* was = before.find(now.config.name);
    if (was == nullptr) {
      diff.added.push_back(i);
    } else if (!(was->decl == now.decl)) {
      diff.reclaimed.push_back(i);
    } else if (!same_local(was->config, now.config)) {
      diff.changed.push_back(i);
    }
  }
  return diff;
}

Result<std::shared_ptr<const ServiceSet>> SlotBook::build(const std::vector<app::ServiceConfig>& services,
                                                          std::string_view group, const ServiceSet* previous,
                                                          std::string* error) {
  std::size_t new_names = 0;
  for (const app::ServiceConfig& config : services) new_names += slots_.count(config.name) == 0;
  if (slots_.size() + new_names > kMaxServiceSlots) {
    if (error != nullptr) {
      *error = "this agent has served " + std::to_string(slots_.size()) +
               " different service names since it started; " + std::to_string(new_names) +
               " more would pass the limit of " + std::to_string(kMaxServiceSlots) +
               ": restart the agent to serve new names";
    }
    return fail(Errc::kInvalidArgument, "service slots");
  }
  auto set = std::make_shared<ServiceSet>();
  set->services_.reserve(services.size());
  for (const app::ServiceConfig& config : services) {
    auto [it, fresh] = slots_.try_emplace(config.name, static_cast<std::uint32_t>(slots_.size()));
    const std::uint32_t slot = it->second;
    if (fresh) generations_.push_back(0);
    const AgentService* was = previous != nullptr ? previous->find(config.name) : nullptr;
    // Added back, or pointed elsewhere: a new generation (wrapping is harmless: a pooled connection lives seconds,
    // not 65,536 reloads).
    if (!fresh && (was == nullptr || !same_local(was->config, config))) ++generations_[slot];
    const std::uint32_t key = slot | (std::uint32_t{generations_[slot]} << tunnel::UpstreamPool::kKeyIndexBits);
    set->by_name_.emplace_back(config.name, set->services_.size());
    set->services_.push_back(AgentService{config, declare(config, group), slot, key});
  }
  std::sort(set->by_name_.begin(), set->by_name_.end());
  return std::shared_ptr<const ServiceSet>(std::move(set));
}

// ---------------------------------------------------------------- TrafficSlots

TrafficSlots::TrafficSlots() : chunks_(std::make_unique<std::atomic<tunnel::StreamTraffic*>[]>(kChunks)) {
  for (std::uint32_t i = 0; i < kChunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);
}

TrafficSlots::~TrafficSlots() {
  for (std::uint32_t i = 0; i < kChunks; ++i) delete[] chunks_[i].load(std::memory_order_relaxed);
}

void TrafficSlots::ensure(std::uint32_t slot) {
  std::atomic<tunnel::StreamTraffic*>& chunk = chunks_[slot / kChunk];
  if (chunk.load(std::memory_order_relaxed) == nullptr) {
    chunk.store(new tunnel::StreamTraffic[kChunk], std::memory_order_release);
  }
}

tunnel::StreamTraffic& TrafficSlots::at(std::uint32_t slot) {
  ensure(slot);
  return chunks_[slot / kChunk].load(std::memory_order_relaxed)[slot % kChunk];
}

const tunnel::StreamTraffic* TrafficSlots::find(std::uint32_t slot) const noexcept {
  if (slot >= kMaxServiceSlots) return nullptr;
  const tunnel::StreamTraffic* chunk = chunks_[slot / kChunk].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[slot % kChunk];
}

}  // namespace ringtun::agent
