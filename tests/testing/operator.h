// Operator-side helpers for multi-process tests: submit many messages and
// read back where they stand.
#ifndef CASELINK_TESTS_TESTING_OPERATOR_H_
#define CASELINK_TESTS_TESTING_OPERATOR_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "caselink/v1/operator.pb.h"
#include "client/node_client.h"

namespace caselink::testing {

// Submits `count` messages of `payload_bytes` each to `recipient` from
// `threads` threads; returns their ids in no particular order.
absl::StatusOr<std::vector<std::string>> SubmitMany(
    client::NodeClient& client, const std::string& recipient, int count,
    size_t payload_bytes, v1::Priority priority = v1::PRIORITY_ORDINARY,
    int threads = 8);

// Every message sent from the node, by id.
absl::StatusOr<std::map<std::string, v1::SentMessage>> AllSent(
    client::NodeClient& client);

// How many sent messages are in `state`.
absl::StatusOr<size_t> CountSentIn(client::NodeClient& client,
                                   v1::DeliveryState state);

// Every inbox entry, in order of arrival (duplicates would show twice).
absl::StatusOr<std::vector<v1::InboxMessage>> AllInbox(
    client::NodeClient& client);

}  // namespace caselink::testing

#endif  // CASELINK_TESTS_TESTING_OPERATOR_H_
