// Package journal is Vouch's append-only, tamper-evident record of every
// admission decision and every piece of evidence.
//
// Entries are encoded as canonical JSON (RFC 8785, JSON Canonicalization
// Scheme) and hashed as leaves of an RFC 6962 Merkle tree; an entry's index is
// its position in the tree. Appends from many goroutines are grouped into
// batches by an Appender (group commit); a batch is written by a Store in one
// transaction together with the new tree state, so indices are contiguous and
// the tree head always matches the stored entries.
package journal
