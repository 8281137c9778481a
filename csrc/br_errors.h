/* One list of the core's result codes: the enum, the names and the messages all come
 * from here (X-macro), so a code can never lack a name. Codes are stable within a
 * release; Lua sees the name (e.g. "PRELUDE_CRC") and the message. */
#ifndef BR_ERRORS_H
#define BR_ERRORS_H

#define BR_ERRORS(X) \
	X(OK,              "ok") \
	X(AGAIN,           "more input needed") \
	X(NOMEM,           "out of memory") \
	X(INVAL,           "invalid argument") \
	X(RANGE,           "value out of range") \
	X(BAD_BASE64,      "invalid base64") \
	/* event-stream decoding */ \
	X(PRELUDE_CRC,     "prelude checksum mismatch") \
	X(MESSAGE_CRC,     "message checksum mismatch") \
	X(FRAME_TOO_SHORT, "total length is below the 16-byte minimum") \
	X(FRAME_TOO_LARGE, "total length exceeds the frame limit") \
	X(HEADERS_LENGTH,  "headers length does not fit in the frame") \
	X(HEADERS_TOO_LARGE, "headers length exceeds the header block limit") \
	X(HEADER_TRUNCATED, "header runs past the end of the header block") \
	X(HEADER_NAME,     "header name is empty or invalid") \
	X(HEADER_TYPE,     "unknown header value type") \
	X(HEADER_DUPLICATE, "duplicate header name") \
	X(TOO_MANY_HEADERS, "too many headers in one message") \
	X(STREAM_TRUNCATED, "stream ended inside a message") \
	X(DECODER_FAILED,  "decoder is in the error state after an earlier error") \
	/* event-stream encoding */ \
	X(HEADER_TOO_LONG, "header name or value too long to encode") \
	/* signing */ \
	X(BAD_DATE,        "date is not in YYYYMMDDTHHMMSSZ form") \
	X(BAD_PATH,        "request path is invalid") \
	X(BAD_HEADER,      "header name or value is invalid") \
	X(CRYPTO,          "cryptographic primitive failed") \
	X(BAD_KEY,         "key is not a valid P-256 EC key") \
	X(BAD_SIGNATURE,   "signature does not verify") \
	/* files */ \
	X(IO,              "file operation failed") \
	/* transport */ \
	X(HTTP_INIT,       "could not create the HTTP transfer") \
	X(HTTP_STATE,      "operation not valid in the transfer's current state") \
	X(HTTP_FAILED,     "HTTP transfer failed")

typedef enum {
#define BR_ERR_ENUM(name, msg) BR_##name,
	BR_ERRORS(BR_ERR_ENUM)
#undef BR_ERR_ENUM
	BR_ERR__COUNT
} br_status;

/* Name ("PRELUDE_CRC") and message of a code; never NULL, "UNKNOWN" for a bad code. */
const char *br_status_name(br_status s);
const char *br_status_message(br_status s);

#endif
