/* SPDX-License-Identifier: MIT */
/*
 * fake_tree.h — a throwaway directory tree (a fake /sys or /proc) for the sensors tests: make
 * it, write files into it with their parent folders, remove it.
 */
#ifndef BITMIX_TEST_FAKE_TREE_H
#define BITMIX_TEST_FAKE_TREE_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write TEXT to ROOT/REL, creating the folders on the way. Returns 0 or -1. */
static inline int fake_write(const char *root, const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *slash = strchr(path + strlen(root) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = 0;
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "we");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static inline int fake_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void fake_remove(const char *root)
{
	nftw(root, fake_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
