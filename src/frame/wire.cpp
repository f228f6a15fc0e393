// Header validation and names for the wire constants (see wire.hpp).
#include "frame/wire.hpp"

namespace ringtun::frame {

ErrorCode check_header(const FrameHeader& h, std::uint32_t max_payload) noexcept {
  if (static_cast<std::uint8_t>(h.type) >= kFrameTypeCount) return ErrorCode::kUnknownFrameType;
  if (h.length > max_payload) return ErrorCode::kFrameSizeError;
  switch (h.type) {
    case FrameType::kData:
      return h.stream == 0 ? ErrorCode::kProtocolError : ErrorCode::kNoError;
    case FrameType::kOpen:
      if (h.stream == 0) return ErrorCode::kProtocolError;
      return h.length > kMaxOpenPayload ? ErrorCode::kFrameSizeError : ErrorCode::kNoError;
    case FrameType::kWindowUpdate:
      if (h.length != 0) return ErrorCode::kFrameSizeError;
      // A zero increment carries nothing and would make an endless no-op loop cheap for an attacker.
      return h.arg == 0 ? ErrorCode::kProtocolError : ErrorCode::kNoError;
    case FrameType::kRst:
      if (h.length != 0) return ErrorCode::kFrameSizeError;
      return h.stream == 0 ? ErrorCode::kProtocolError : ErrorCode::kNoError;
    case FrameType::kPing:
      if (h.length != 0) return ErrorCode::kFrameSizeError;
      return h.stream != 0 ? ErrorCode::kProtocolError : ErrorCode::kNoError;
    case FrameType::kGoaway:
      return h.length > kMaxGoawayPayload ? ErrorCode::kFrameSizeError : ErrorCode::kNoError;
    case FrameType::kSettings:
      if (h.stream != 0) return ErrorCode::kProtocolError;
      if (h.length % kSettingsEntrySize != 0 || h.length > kMaxSettingsEntries * kSettingsEntrySize) {
        return ErrorCode::kFrameSizeError;
      }
      return ErrorCode::kNoError;
    case FrameType::kControl:
      return h.stream != 0 ? ErrorCode::kProtocolError : ErrorCode::kNoError;
  }
  return ErrorCode::kUnknownFrameType;
}

Errc errc_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kNoError: return Errc::kOk;
    case ErrorCode::kFlowControlError: return Errc::kFlowControl;
    case ErrorCode::kEnhanceYourCalm:
    case ErrorCode::kRefusedStream:
    case ErrorCode::kStreamLimit:
    case ErrorCode::kFrameSizeError: return Errc::kLimit;
    case ErrorCode::kCancel: return Errc::kClosed;
    case ErrorCode::kVersionMismatch: return Errc::kUnsupported;
    default: return Errc::kProtocol;
  }
}

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kNoError: return "NO_ERROR";
    case ErrorCode::kProtocolError: return "PROTOCOL_ERROR";
    case ErrorCode::kInternalError: return "INTERNAL_ERROR";
    case ErrorCode::kFlowControlError: return "FLOW_CONTROL_ERROR";
    case ErrorCode::kStreamClosed: return "STREAM_CLOSED";
    case ErrorCode::kFrameSizeError: return "FRAME_SIZE_ERROR";
    case ErrorCode::kRefusedStream: return "REFUSED_STREAM";
    case ErrorCode::kCancel: return "CANCEL";
    case ErrorCode::kEnhanceYourCalm: return "ENHANCE_YOUR_CALM";
    case ErrorCode::kUnknownFrameType: return "UNKNOWN_FRAME_TYPE";
    case ErrorCode::kVersionMismatch: return "VERSION_MISMATCH";
    case ErrorCode::kSettingsError: return "SETTINGS_ERROR";
    case ErrorCode::kConnectFailed: return "CONNECT_FAILED";
    case ErrorCode::kStreamLimit: return "STREAM_LIMIT";
    case ErrorCode::kConnectTimeout: return "CONNECT_TIMEOUT";
  }
  return "UNKNOWN_ERROR_CODE";
}

const char* frame_type_name(FrameType type) noexcept {
  switch (type) {
    case FrameType::kData: return "DATA";
    case FrameType::kOpen: return "OPEN";
    case FrameType::kWindowUpdate: return "WINDOW_UPDATE";
    case FrameType::kRst: return "RST";
    case FrameType::kPing: return "PING";
    case FrameType::kGoaway: return "GOAWAY";
    case FrameType::kSettings: return "SETTINGS";
    case FrameType::kControl: return "CONTROL";
  }
  return "UNKNOWN";
}

}  // namespace ringtun::frame
