/*
 * fds.h - the registry of this copy's PostgreSQL sockets (fds.c), which a
 * forked child closes.
 */
#ifndef GOHSM_FDS_H
#define GOHSM_FDS_H

/* Connections tracked at once; more are counted and left open in a child. */
#define GOHSM_FDS_MAX 256

/* 1 if fd is now tracked; 0 if not (array full, no fork handler). */
int gohsm_fds_opened(int fd);
void gohsm_fds_closing(int fd);
int gohsm_fds_count(void);
unsigned long gohsm_fds_unregistered(void);

#endif
