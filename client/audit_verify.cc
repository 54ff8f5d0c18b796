#include "client/audit_verify.h"

#include <algorithm>
#include <set>
#include <span>
#include <string_view>
#include <utility>

#include "core/identity.h"
#include "core/merkle.h"
#include "core/strings.h"
#include "core/tree_head.h"
#include "google/protobuf/util/time_util.h"

namespace caselink::client {
namespace {

using google::protobuf::util::TimeUtil;

// Collects the problems of one answer, all about the same node.
class Findings {
 public:
  explicit Findings(std::string node) : node_(std::move(node)) {}

  void OfAnswer(std::string what) {
    problems_.push_back({node_, std::nullopt, std::nullopt, std::move(what)});
  }
  void OfEntry(uint64_t index, std::string what) {
    problems_.push_back({node_, index, std::nullopt, std::move(what)});
  }
  void OfEntries(uint64_t first, uint64_t last, std::string what) {
    if (first == last) return OfEntry(first, std::move(what));
    problems_.push_back({node_, first, last, std::move(what)});
  }

  std::vector<AuditProblem> Take() { return std::move(problems_); }

 private:
  std::string node_;
  std::vector<AuditProblem> problems_;
};

// What the head's checks leave for the entries' checks: the hash of the
// tree, if the head names a known algorithm.
struct HeadFacts {
  std::optional<HashAlgorithm> hash;
};

std::string ProblemNode(const v1::SignedTreeHead& head,
                        const AuditVerifyOptions& options) {
  return head.code().empty() ? options.expected_node : head.code();
}

absl::Time CertificateTime(const v1::SignedTreeHead& head,
                           const AuditVerifyOptions& options) {
  if (options.certificate_time.has_value()) return *options.certificate_time;
  return absl::FromUnixMicros(
      TimeUtil::TimestampToMicroseconds(head.signed_at()));
}

// The certificate's chain and name; its key if both are good.
std::optional<PublicKey> CheckCertificate(const v1::SignedTreeHead& head,
                                          std::string_view pem,
                                          const TrustStore& trust,
                                          const AuditVerifyOptions& options,
                                          Findings& findings) {
  absl::StatusOr<std::vector<Certificate>> chain = Certificate::AllFromPem(pem);
  if (!chain.ok()) {
    findings.OfAnswer(Cat("signing certificate does not parse: ",
                          View(chain.status().message())));
    return std::nullopt;
  }
  const Certificate& leaf = chain->front();
  const std::vector<Certificate> intermediates(chain->begin() + 1,
                                               chain->end());
  bool good = true;
  absl::Status chained =
      trust.VerifyChain(leaf, intermediates, CertificateTime(head, options));
  if (!chained.ok()) {
    findings.OfAnswer(
        Cat("signing certificate is not trusted: ", View(chained.message())));
    good = false;
  }

  absl::StatusOr<Identity> identity = IdentityFromUris(leaf.uri_sans());
  if (!identity.ok()) {
    findings.OfAnswer(Cat("signing certificate names no node: ",
                          View(identity.status().message())));
    good = false;
  } else if (identity->role != Role::kNode || identity->code != head.code()) {
    findings.OfAnswer(Cat("signing certificate is for ",
                          RoleName(identity->role), " ", identity->code,
                          ", not for node ", head.code()));
    good = false;
  }

  absl::StatusOr<PublicKey> key = leaf.public_key();
  if (!key.ok()) {
    findings.OfAnswer(Cat("signing certificate's key is unusable: ",
                          View(key.status().message())));
    return std::nullopt;
  }
  // A key from a certificate that failed is not used: its signature would
  // prove nothing.
  if (!good) return std::nullopt;
  return *std::move(key);
}

HeadFacts CheckHead(const v1::SignedTreeHead& head, std::string_view pem,
                    const TrustStore& trust, const AuditVerifyOptions& options,
                    Findings& findings) {
  HeadFacts facts;
  if (head.code().empty()) findings.OfAnswer("the answer has no head");
  if (!options.expected_node.empty() && head.code() != options.expected_node) {
    findings.OfAnswer(Cat("head is of node ", head.code(), ", not of ",
                          options.expected_node));
  }
  absl::StatusOr<SignatureScheme> scheme =
      SignatureSchemeFromProto(head.algorithm());
  if (scheme.ok()) {
    facts.hash = HashAlgorithmOf(*scheme);
  } else {
    findings.OfAnswer(Cat("head names no known algorithm: ",
                          View(scheme.status().message())));
  }

  std::optional<PublicKey> key =
      CheckCertificate(head, pem, trust, options, findings);
  if (key.has_value()) {
    absl::Status signed_ok = VerifyTreeHead(head, *key);
    if (!signed_ok.ok()) {
      findings.OfAnswer(
          Cat("signature does not verify: ", View(signed_ok.message())));
    }
  }
  return facts;
}

// The checks of one entry on its own: its event, and its proof.
std::optional<v1::AuditEvent> CheckEntry(const v1::AuditEntry& entry,
                                         const v1::SignedTreeHead& head,
                                         const HeadFacts& facts,
                                         Findings& findings) {
  const uint64_t index = entry.index();
  std::optional<v1::AuditEvent> event;
  v1::AuditEvent parsed;
  if (parsed.ParseFromString(entry.event())) {
    event = std::move(parsed);
    if (event->index() != index) {
      findings.OfEntry(index, Cat("event says it is entry ", event->index()));
    }
    if (event->node() != head.code()) {
      findings.OfEntry(index, Cat("event is of node ", event->node(),
                                  ", not of ", head.code()));
    }
  } else {
    findings.OfEntry(index, "event bytes do not parse as an AuditEvent");
  }

  if (index >= head.tree_size()) {
    findings.OfEntry(
        index, Cat("index is outside the tree of size ", head.tree_size()));
    return event;
  }
  if (!facts.hash.has_value()) return event;
  absl::StatusOr<std::string> leaf = LeafHash(*facts.hash, entry.event());
  if (!leaf.ok()) {
    findings.OfEntry(
        index, Cat("cannot hash the event: ", View(leaf.status().message())));
    return event;
  }
  const std::vector<std::string> path(entry.inclusion_path().begin(),
                                      entry.inclusion_path().end());
  absl::Status included = VerifyInclusion(*facts.hash, index, head.tree_size(),
                                          *leaf, path, head.root_hash());
  if (absl::IsUnauthenticated(included)) {
    findings.OfEntry(index, "event does not match its inclusion proof");
  } else if (!included.ok()) {
    findings.OfEntry(
        index, Cat("inclusion proof is malformed: ", View(included.message())));
  }
  return event;
}

// One entry's link in its case's chain, given the entry before it in the
// answer (if any) and every index the answer holds.
void CheckChainLink(uint64_t index, const v1::AuditEvent& event,
                    std::optional<uint64_t> before,
                    const std::set<uint64_t>& present, Findings& findings) {
  const uint64_t previous_in_case = event.previous_in_case();
  if (previous_in_case == 0) {
    if (before.has_value()) {
      findings.OfEntry(index, Cat("event claims to be the case's first, but "
                                  "entry ",
                                  *before, " comes before it"));
    }
    return;
  }
  const uint64_t previous = previous_in_case - 1;
  if (before.has_value() && previous == *before) return;
  if (previous >= index) {
    findings.OfEntry(index, Cat("previous_in_case points at entry ", previous,
                                ", which is not earlier"));
  } else if (present.count(previous) == 0) {
    findings.OfEntry(index, Cat("the case's previous event, entry ", previous,
                                ", is missing from the answer"));
  } else if (before.has_value()) {
    findings.OfEntry(index, Cat("previous_in_case names entry ", previous,
                                ", not entry ", *before, " before it"));
  } else {
    findings.OfEntry(index, Cat("previous_in_case names entry ", previous,
                                ", which comes later in the answer"));
  }
}

void CheckCaseHistory(const v1::AuditAnswer& answer,
                      const std::vector<std::optional<v1::AuditEvent>>& events,
                      const AuditVerifyOptions& options, Findings& findings) {
  if (!answer.next_page_token().empty()) {
    findings.OfAnswer(
        "the answer has a next page, so it is not the full "
        "history");
  }
  std::set<uint64_t> present;
  for (const v1::AuditEntry& entry : answer.entries()) {
    present.insert(entry.index());
  }

  std::string case_id = options.case_id;
  std::optional<uint64_t> before;
  for (int i = 0; i < answer.entries_size(); ++i) {
    const uint64_t index = answer.entries(i).index();
    if (events[i].has_value()) {
      const v1::AuditEvent& event = *events[i];
      if (case_id.empty()) case_id = event.case_id();
      if (event.case_id() != case_id) {
        findings.OfEntry(index, Cat("event is of case \"", event.case_id(),
                                    "\", not \"", case_id, "\""));
      }
      CheckChainLink(index, event, before, present, findings);
    }
    before = index;
  }
}

void CheckExport(const v1::AuditAnswer& answer, uint64_t tree_size,
                 Findings& findings) {
  if (!answer.next_page_token().empty()) {
    findings.OfAnswer(
        "the answer has a next page, so it is not the whole "
        "log");
  }
  std::set<uint64_t> present;
  for (const v1::AuditEntry& entry : answer.entries()) {
    present.insert(entry.index());
  }
  // Runs of missing indices, each reported once.
  uint64_t expected = 0;
  for (uint64_t index : present) {
    if (index >= tree_size) break;
    if (index > expected) {
      findings.OfEntries(expected, index - 1, "missing from the export");
    }
    expected = index + 1;
  }
  if (expected < tree_size) {
    findings.OfEntries(expected, tree_size - 1, "missing from the export");
  }
}

}  // namespace

std::string AuditProblem::ToString() const {
  std::string where = node.empty() ? std::string("?") : node;
  if (!entry.has_value()) return Cat(where, ": ", what);
  if (last_entry.has_value()) {
    return Cat(where, " entries ", *entry, "-", *last_entry, ": ", what);
  }
  return Cat(where, " entry ", *entry, ": ", what);
}

std::string AuditVerification::Summary() const {
  if (ok()) {
    return Cat("verified: ", entries, entries == 1 ? " entry" : " entries",
               " against head ", node, " size ", tree_size);
  }
  return Cat(node.empty() ? std::string("?") : node, ": ", problems.size(),
             problems.size() == 1 ? " problem" : " problems", " in ", entries,
             entries == 1 ? " entry" : " entries", " against head size ",
             tree_size);
}

AuditVerification VerifySignedHead(const v1::SignedTreeHead& head,
                                   std::string_view signing_certificate_pem,
                                   const TrustStore& trust,
                                   const AuditVerifyOptions& options) {
  Findings findings(ProblemNode(head, options));
  CheckHead(head, signing_certificate_pem, trust, options, findings);
  AuditVerification result;
  result.node = head.code();
  result.tree_size = head.tree_size();
  result.problems = findings.Take();
  return result;
}

AuditVerification VerifyAuditAnswer(const v1::AuditAnswer& answer,
                                    const TrustStore& trust,
                                    const AuditVerifyOptions& options) {
  const v1::SignedTreeHead& head = answer.head();
  Findings findings(ProblemNode(head, options));
  const HeadFacts facts = CheckHead(head, answer.signing_certificate_pem(),
                                    trust, options, findings);

  // Each entry on its own, then their order.
  std::vector<std::optional<v1::AuditEvent>> events;
  std::optional<uint64_t> before;
  for (const v1::AuditEntry& entry : answer.entries()) {
    events.push_back(CheckEntry(entry, head, facts, findings));
    if (before.has_value() && entry.index() <= *before) {
      findings.OfEntry(entry.index(),
                       entry.index() == *before
                           ? std::string("appears twice")
                           : Cat("out of order: comes after entry ", *before));
    }
    before = entry.index();
  }

  // What the answer claims to cover.
  if (options.scope == AuditScope::kCaseHistory) {
    CheckCaseHistory(answer, events, options, findings);
  } else if (options.scope == AuditScope::kExport) {
    CheckExport(answer, head.tree_size(), findings);
  }

  AuditVerification result;
  result.node = head.code();
  result.tree_size = head.tree_size();
  result.entries = static_cast<size_t>(answer.entries_size());
  result.problems = findings.Take();
  return result;
}

std::vector<AuditVerification> VerifyCasePath(
    const v1::GetCasePathResponse& path, std::string_view case_id,
    const TrustStore& trust, AuditVerifyOptions options) {
  std::vector<AuditVerification> results;
  options.scope = AuditScope::kCaseHistory;
  options.case_id = std::string(case_id);
  for (const v1::NodeHistory& part : path.nodes()) {
    options.expected_node = part.code();
    if (!part.error().empty()) {
      AuditVerification result;
      result.node = part.code();
      result.problems.push_back({part.code(), std::nullopt, std::nullopt,
                                 Cat("no answer: ", part.error())});
      results.push_back(std::move(result));
      continue;
    }
    results.push_back(VerifyAuditAnswer(part.answer(), trust, options));
  }
  return results;
}

}  // namespace caselink::client
