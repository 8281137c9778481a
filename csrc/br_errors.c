#include "br_errors.h"

static const char *const names[] = {
#define BR_ERR_NAME(name, msg) #name,
	BR_ERRORS(BR_ERR_NAME)
#undef BR_ERR_NAME
};

static const char *const messages[] = {
#define BR_ERR_MSG(name, msg) msg,
	BR_ERRORS(BR_ERR_MSG)
#undef BR_ERR_MSG
};

const char *br_status_name(br_status s)
{
	return (unsigned)s < BR_ERR__COUNT ? names[s] : "UNKNOWN";
}

const char *br_status_message(br_status s)
{
	return (unsigned)s < BR_ERR__COUNT ? messages[s] : "unknown error";
}
