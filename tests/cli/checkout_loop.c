/*
 * checkout_loop.c - runs checkouts on a terminal's data dir through the public
 * C API, acknowledging each one on stdout as soon as it returned. kill_test.py
 * kills it at random moments and checks that every acknowledged receipt is in
 * the ledger exactly once.
 *
 *   checkout_loop DATA_DIR CARD BASKET_TEMPLATE START COUNT
 *
 * BASKET_TEMPLATE is a basket file in which every "@ID@" is replaced by the
 * receipt id, K-<n> for n = START .. START + COUNT - 1. After each successful
 * checkout it prints "ack K-<n> <earned>" and flushes. Exit 0 when all COUNT
 * checkouts were done, 1 on the first failure (with the error on stderr),
 * 2 on bad arguments.
 */
#include <loyalty/loyalty.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATE_MAX (64 * 1024)
#define BASKET_MAX (TEMPLATE_MAX * 2)

static const char placeholder[] = "@ID@";

static int parse_count(const char *s, long long *out)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return 0;
	*out = v;
	return 1;
}

/* Reads the whole file into buf (NUL-terminated); 0 on failure. */
static int read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, size - 1, f);
	int ok = !ferror(f) && feof(f);
	fclose(f);
	buf[n] = '\0';
	return ok;
}

/* Copies tmpl into out with every placeholder replaced by id; 0 when it does not fit. */
static int fill(const char *tmpl, const char *id, char *out, size_t size)
{
	size_t used = 0, idlen = strlen(id), plen = sizeof placeholder - 1;
	while (*tmpl) {
		const char *piece = tmpl;
		size_t len = 1;
		if (strncmp(tmpl, placeholder, plen) == 0) {
			piece = id;
			len = idlen;
			tmpl += plen;
		} else {
			tmpl++;
		}
		if (used + len + 1 > size)
			return 0;
		memcpy(out + used, piece, len);
		used += len;
	}
	out[used] = '\0';
	return 1;
}

/* The "earned" figure of a checkout's result JSON; -1 when absent. */
static long long earned_of(const char *json)
{
	const char *key = strstr(json, "\"earned\":");
	if (!key)
		return -1;
	return strtoll(key + strlen("\"earned\":"), NULL, 10);
}

int main(int argc, char **argv)
{
	static char tmpl[TEMPLATE_MAX], basket[BASKET_MAX];
	long long start = 0, count = 0;
	if (argc != 6 || !parse_count(argv[4], &start) || !parse_count(argv[5], &count)) {
		fprintf(stderr, "usage: checkout_loop DATA_DIR CARD BASKET_TEMPLATE START COUNT\n");
		return 2;
	}
	if (!read_file(argv[3], tmpl, sizeof tmpl)) {
		fprintf(stderr, "checkout_loop: cannot read %s\n", argv[3]);
		return 2;
	}
	loy_terminal *t = NULL;
	if (loy_terminal_new(&t) != LOY_OK) {
		fprintf(stderr, "checkout_loop: out of memory\n");
		return 1;
	}
	loy_status st = loy_terminal_open(t, argv[1]);
	if (st != LOY_OK) {
		fprintf(stderr, "checkout_loop: open %s: %s: %s\n", argv[1], loy_errstr(st),
			loy_terminal_errmsg(t));
		loy_terminal_free(t);
		return 1;
	}
	int rc = 0;
	for (long long n = start; n < start + count; n++) {
		char id[32];
		snprintf(id, sizeof id, "K-%lld", n);
		if (!fill(tmpl, id, basket, sizeof basket)) {
			fprintf(stderr, "checkout_loop: basket too large\n");
			rc = 2;
			break;
		}
		loy_redemption none = LOY_INIT(loy_redemption);
		st = loy_terminal_checkout(t, argv[2], basket, strlen(basket), &none);
		if (st != LOY_OK) {
			fprintf(stderr, "checkout_loop: checkout %s: %s: %s\n", id, loy_errstr(st),
				loy_terminal_errmsg(t));
			rc = 1;
			break;
		}
		printf("ack %s %lld\n", id, earned_of(loy_terminal_result_json(t)));
		fflush(stdout);
	}
	loy_terminal_free(t);
	return rc;
}
