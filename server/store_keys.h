// The layout of a node's keys in its store.
//
//   messages  "t/" id               SentState of a message sent from here
//             "s/" created id       index of those, oldest first
//             "i/" id               InboxRecord of a message that arrived
//             "b/" digest offset    a piece of an attachment (attachments.h)
//   outbox    peer priority seq     OutboxEntry waiting for that next hop
//   inbox     seq                   id, in order of arrival
//   dedup     id                    expiry time (unix micros, big-endian)
//   meta      "outbox_seq"          last outbox sequence number used
//             "inbox_seq"           last inbox sequence number used
//             "k/" key id           KnownKey
//             "node_code"           the node this store belongs to
//
// Outbox keys sort green-channel entries of a peer before ordinary ones,
// and each class by age.
#ifndef CASELINK_SERVER_STORE_KEYS_H_
#define CASELINK_SERVER_STORE_KEYS_H_

#include <string>
#include <string_view>

#include "caselink/v1/envelope.pb.h"
#include "core/strings.h"
#include "storage/store.h"

namespace caselink::server {

inline constexpr std::string_view kOutboxSeqKey = "outbox_seq";
inline constexpr std::string_view kInboxSeqKey = "inbox_seq";

inline std::string SentKey(std::string_view id) { return Cat("t/", id); }
inline std::string SentIndexKey(int64_t created_micros, std::string_view id) {
  std::string key = "s/";
  storage::AppendUint64BE(&key, static_cast<uint64_t>(created_micros));
  key.append(id);
  return key;
}
inline std::string InboxRecordKey(std::string_view id) { return Cat("i/", id); }

inline std::string OutboxKey(std::string_view peer, v1::Priority priority,
                             uint64_t seq) {
  std::string key(peer);
  key.push_back(priority == v1::PRIORITY_GREEN_CHANNEL ? '\0' : '\1');
  storage::AppendUint64BE(&key, seq);
  return key;
}

inline std::string SeqKey(uint64_t seq) { return storage::Uint64BE(seq); }

}  // namespace caselink::server

#endif  // CASELINK_SERVER_STORE_KEYS_H_
