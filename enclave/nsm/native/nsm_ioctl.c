/*
 * nsm-ioctl: send ONE Nitro Secure Module request through the /dev/nsm ioctl.
 *
 *   stdin : u32 big-endian length N (1..4096), then N bytes of CBOR request, then end of file
 *   stdout: u32 big-endian length M, then M bytes of CBOR response (only on exit 0)
 *   env   : NSM_DEVICE overrides the device path (default /dev/nsm); used by tests
 *
 * The helper does not look inside the CBOR: encoding and decoding live in TypeScript
 * (enclave/nsm/nsm-protocol.ts). An NSM *error response* ({"Error": ...}) is a successful ioctl
 * and exits 0.
 *
 * Exit codes (enclave/nsm/hardware-nsm.ts maps them to typed errors; every failure also writes
 * one line "nsm-ioctl: ..." on stderr):
 *   0  success, response written
 *   2  usage error: arguments given, or stdin not one well-formed length-prefixed request
 *   3  request too large: over NSM_REQUEST_MAX_SIZE, or the driver answered EMSGSIZE
 *   4  the device cannot be opened (missing: not inside a Nitro enclave; or no permission)
 *   5  the ioctl failed (errno in the message) or returned an impossible response length
 *   6  writing the response to stdout failed
 *   7  the device refused the NSM ioctl for good: EPERM/EACCES (the upstream Linux driver's raw
 *      ioctl needs CAP_SYS_ADMIN, per include/uapi/linux/nsm.h) or ENOTTY (not an NSM device)
 *
 * The ioctl, from aws/aws-nitro-enclaves-nsm-api src/driver/mod.rs and the Linux uapi header
 * include/uapi/linux/nsm.h:
 *   NSM_IOCTL_MAGIC 0x0A, request _IOWR(0x0A, 0, struct nsm_message),
 *   struct nsm_message { iovec request; iovec response; },
 *   NSM_REQUEST_MAX_SIZE 0x1000, NSM_RESPONSE_MAX_SIZE 0x3000.
 * The driver copies the request, waits for the device, copies the response into the response
 * buffer and writes the response's real length back into response.len.
 * The uapi header spells each iovec as two __u64 (addr, len), which is `struct iovec` on the
 * 64-bit targets Nitro runs on (x86_64, aarch64); using the fixed-width form keeps the ioctl
 * number and layout right on any build (sizeof = 32, checked below).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define NSM_IOCTL_MAGIC 0x0A
#define NSM_REQUEST_MAX_SIZE 0x1000
#define NSM_RESPONSE_MAX_SIZE 0x3000
#define NSM_DEFAULT_DEVICE "/dev/nsm"

enum {
	EXIT_OK = 0,
	EXIT_USAGE = 2,
	EXIT_TOO_LARGE = 3,
	EXIT_NO_DEVICE = 4,
	EXIT_IOCTL = 5,
	EXIT_OUTPUT = 6,
	EXIT_REFUSED = 7,
};

struct nsm_iovec {
	uint64_t addr;
	uint64_t len;
};

struct nsm_message {
	struct nsm_iovec request;
	struct nsm_iovec response;
};

_Static_assert(sizeof(struct nsm_message) == 32, "struct nsm_message must be 32 bytes");
_Static_assert(sizeof(void *) != 8 || sizeof(struct iovec) == sizeof(struct nsm_iovec),
	       "on 64-bit targets struct iovec and the uapi nsm_iovec agree");

#define NSM_IOCTL_REQUEST _IOWR(NSM_IOCTL_MAGIC, 0, struct nsm_message)

static unsigned char request_buf[NSM_REQUEST_MAX_SIZE];
static unsigned char response_buf[NSM_RESPONSE_MAX_SIZE];

__attribute__((format(printf, 2, 3)))
static int fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("nsm-ioctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* Reads exactly n bytes; returns the number read (less than n only at end of file), or -1. */
static ssize_t read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int write_full(int fd, const unsigned char *buf, size_t n)
{
	size_t put = 0;
	while (put < n) {
		ssize_t w = write(fd, buf + put, n - put);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		put += (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char head[4];
	unsigned char extra;
	ssize_t r;
	uint32_t len;
	const char *device;
	struct nsm_message msg;
	int fd, rc, saved;

	(void)argv;
	if (argc != 1)
		return fail(EXIT_USAGE, "takes no arguments; the request comes on stdin");

	r = read_full(STDIN_FILENO, head, sizeof head);
	if (r < 0)
		return fail(EXIT_USAGE, "cannot read stdin: %s", strerror(errno));
	if (r != (ssize_t)sizeof head)
		return fail(EXIT_USAGE, "stdin ended before the 4-byte request length");
	len = ((uint32_t)head[0] << 24) | ((uint32_t)head[1] << 16) | ((uint32_t)head[2] << 8) | (uint32_t)head[3];
	if (len == 0)
		return fail(EXIT_USAGE, "request length is 0");
	if (len > NSM_REQUEST_MAX_SIZE)
		return fail(EXIT_TOO_LARGE, "request is larger than NSM_REQUEST_MAX_SIZE (4096 bytes)");
	r = read_full(STDIN_FILENO, request_buf, len);
	if (r < 0)
		return fail(EXIT_USAGE, "cannot read stdin: %s", strerror(errno));
	if (r != (ssize_t)len)
		return fail(EXIT_USAGE, "stdin ended before the whole request");
	r = read_full(STDIN_FILENO, &extra, 1);
	if (r < 0)
		return fail(EXIT_USAGE, "cannot read stdin: %s", strerror(errno));
	if (r != 0)
		return fail(EXIT_USAGE, "bytes after the request on stdin");

	device = getenv("NSM_DEVICE");
	if (device == NULL || device[0] == '\0')
		device = NSM_DEFAULT_DEVICE;
	fd = open(device, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail(EXIT_NO_DEVICE, "cannot open %s: %s", device, strerror(errno));

	memset(&msg, 0, sizeof msg);
	msg.request.addr = (uint64_t)(uintptr_t)request_buf;
	msg.request.len = len;
	msg.response.addr = (uint64_t)(uintptr_t)response_buf;
	msg.response.len = sizeof response_buf;

	/* Not retried on EINTR: an ExtendPCR must never be applied twice. */
	rc = ioctl(fd, NSM_IOCTL_REQUEST, &msg);
	saved = errno;
	close(fd);
	if (rc != 0) {
		if (saved == EMSGSIZE)
			return fail(EXIT_TOO_LARGE, "the NSM driver refused the request size: %s", strerror(saved));
		if (saved == EPERM || saved == EACCES)
			return fail(EXIT_REFUSED, "ioctl on %s not permitted (the NSM ioctl needs CAP_SYS_ADMIN): %s",
				    device, strerror(saved));
		if (saved == ENOTTY)
			return fail(EXIT_REFUSED, "%s is not an NSM device: %s", device, strerror(saved));
		return fail(EXIT_IOCTL, "ioctl on %s failed: %s", device, strerror(saved));
	}
	if (msg.response.len == 0 || msg.response.len > sizeof response_buf)
		return fail(EXIT_IOCTL, "ioctl on %s returned an impossible response length", device);

	len = (uint32_t)msg.response.len;
	head[0] = (unsigned char)(len >> 24);
	head[1] = (unsigned char)(len >> 16);
	head[2] = (unsigned char)(len >> 8);
	head[3] = (unsigned char)len;
	if (write_full(STDOUT_FILENO, head, sizeof head) != 0 || write_full(STDOUT_FILENO, response_buf, len) != 0)
		return fail(EXIT_OUTPUT, "cannot write the response to stdout: %s", strerror(errno));
	return EXIT_OK;
}
