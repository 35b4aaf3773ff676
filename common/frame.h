/*
 * Sealing and opening transport records (see wire.h for the layout). Pure
 * code: buffers in, buffers out, in place.
 */
#ifndef WALGUARD_FRAME_H
#define WALGUARD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "noise.h"
#include "wire.h"

enum frame_result {
	FRAME_OK = 0,
	FRAME_NEED_MORE,	   /* not a whole header or record yet */
	FRAME_ERR_LENGTH,	   /* the length field is out of range */
	FRAME_ERR_DECRYPT,	   /* authentication failed: tampered, dropped, repeated or reordered */
	FRAME_ERR_TYPE,		   /* unknown type, or a body where the type allows none */
	FRAME_ERR_NONCE_EXHAUSTED, /* the cipher may not be used again */
};

/*
 * Seal a record in place. record has this layout on entry, with body_len
 * bytes of body already in place:
 *
 *   [FRAME_HEADER_LEN free][FRAME_TYPE_LEN free][body][NOISE_TAG_LEN free]
 *
 * body_len must be at most FRAME_MAX_BODY_LEN. On FRAME_OK, *record_len is
 * body_len + FRAME_OVERHEAD.
 */
enum frame_result frame_seal(struct noise_cipher *send, uint8_t *record, enum frame_type type,
			     size_t body_len, size_t *record_len);

/*
 * Find the length of the record at the start of buf, given the avail bytes
 * received so far. FRAME_OK sets *record_len even when avail is smaller
 * than it; FRAME_NEED_MORE means fewer than FRAME_HEADER_LEN bytes.
 */
enum frame_result frame_record_length(const uint8_t *buf, size_t avail, size_t *record_len);

/*
 * Open a whole record of record_len bytes in place. On FRAME_OK, *type is
 * the frame type and *body points into record. DATA needs a body of at
 * least one byte and the other types allow none.
 */
enum frame_result frame_open(struct noise_cipher *receive, uint8_t *record, size_t record_len,
			     enum frame_type *type, uint8_t **body, size_t *body_len);

const char *frame_result_string(enum frame_result result);

#endif
