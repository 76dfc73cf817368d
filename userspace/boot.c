// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel loaders for `kestrel run --kernel`: Multiboot v1 (ELF32 or the
 * a.out kludge) entered in 32-bit protected mode, and Linux bzImages
 * entered at their 64-bit entry point (Documentation/arch/x86/boot.rst).
 * See Documentation/launcher.rst for the memory layout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "launcher.h"

#define KIB			1024ULL
#define MIB			(1024ULL * KIB)
#define GIB			(1024ULL * MIB)

/*
 * The legacy PC holes: EBDA at 639 KiB, VGA and BIOS from 640 KiB to
 * 1 MiB.  The "BIOS" part starts at ACPI_BASE: the ACPI tables are there.
 */
#define LOW_RAM_END		0x9fc00
#define BIOS_START		ACPI_BASE
#define HIGH_RAM_START		0x100000

#define X86_CR0_PE		(1ULL << 0)
#define X86_CR0_ET		(1ULL << 4)
#define X86_CR0_NE		(1ULL << 5)
#define X86_CR0_PG		(1ULL << 31)
#define X86_CR4_PAE		(1ULL << 5)
#define X86_EFER_LME		(1ULL << 8)
#define X86_EFER_LMA		(1ULL << 10)

#define GDT_CODE32		0x00cf9b000000ffffULL
#define GDT_CODE64		0x00af9b000000ffffULL
#define GDT_DATA		0x00cf93000000ffffULL

/* Whole files are read into memory; a kernel or initrd is at most this. */
#define MAX_FILE		(2 * GIB)

struct file_buf {
	const char *path;
	uint8_t *data;
	uint64_t size;
};

static int read_whole(const char *path, struct file_buf *f)
{
	struct stat st;
	uint64_t done = 0;
	int fd;

	f->path = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		err("%s: %s", path, errno ? strerror(errno) :
		    "not a regular file");
		goto fail;
	}
	if (!st.st_size) {
		err("%s: empty file", path);
		goto fail;
	}
	if ((uint64_t)st.st_size > MAX_FILE) {
		err("%s: larger than 2 GiB", path);
		goto fail;
	}
	f->size = st.st_size;
	f->data = malloc(f->size);
	if (!f->data) {
		err("%s: out of memory", path);
		goto fail;
	}
	while (done < f->size) {
		ssize_t n = read(fd, f->data + done, f->size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err("%s: read: %s", path, n ? strerror(errno) :
			    "file shrank");
			free(f->data);
			goto fail;
		}
		done += n;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

static void flat_segment(struct kestrel_segment *s, uint16_t sel,
			 uint8_t type, bool code64)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->type = type;
	s->limit = 0xffffffff;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code64;
	s->db = !code64;
}

static bool fits(uint64_t addr, uint64_t len, uint64_t mem_size)
{
	return addr <= mem_size && len <= mem_size - addr;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* ---- Multiboot v1 ----------------------------------------------------- */

#define MB_MAGIC		0x1badb002
#define MB_BOOT_MAGIC		0x2badb002
#define MB_SEARCH		8192
#define MB_PAGE_ALIGN		(1U << 0)
#define MB_MEMORY_INFO		(1U << 1)
#define MB_VIDEO_MODE		(1U << 2)
#define MB_AOUT_KLUDGE		(1U << 16)

#define MBI_MEMORY		(1U << 0)
#define MBI_CMDLINE		(1U << 2)
#define MBI_MODS		(1U << 3)
#define MBI_MMAP		(1U << 6)
#define MBI_LOADER_NAME		(1U << 9)

/*
 * Below the kernel, which Multiboot kernels put at 1 MiB or above: the
 * GDT, the info structure, its module list and memory map, the loader's
 * name, the command line; the stack grows down from MB_STACK_TOP.
 */
#define MB_GDT			0x0800
#define MB_INFO			0x1000
#define MB_MODS			0x1080
#define MB_MMAP			0x1100
#define MB_NAME			0x1f00
#define MB_CMDLINE		0x2000
#define MB_CMDLINE_MAX		0x4000
#define MB_AREA_END		0x6000
#define MB_STACK_TOP		0x9000

static int mb_find_header(const struct file_buf *k, uint64_t *off)
{
	uint64_t i, end = k->size < MB_SEARCH ? k->size : MB_SEARCH;

	for (i = 0; i + 12 <= end; i += 4) {
		if (get32(k->data + i) != MB_MAGIC)
			continue;
		if ((uint32_t)(get32(k->data + i) + get32(k->data + i + 4) +
			       get32(k->data + i + 8))) {
			err("%s: Multiboot header at 0x%llx has a bad checksum",
			    k->path, (unsigned long long)i);
			return -1;
		}
		*off = i;
		return 0;
	}
	return 1;
}

/* Copy [@off, @off + @filesz) of the file to @paddr, zero up to @memsz. */
static int mb_load(uint8_t *mem, uint64_t size, const struct file_buf *k,
		   uint64_t paddr, uint64_t off, uint64_t filesz, uint64_t memsz,
		   uint64_t *kernel_end)
{
	if (off > k->size || filesz > k->size - off) {
		err("%s: truncated: a segment needs bytes 0x%llx-0x%llx, the file has 0x%llx",
		    k->path, (unsigned long long)off,
		    (unsigned long long)(off + filesz),
		    (unsigned long long)k->size);
		return -1;
	}
	if (memsz < filesz)
		memsz = filesz;
	if (!fits(paddr, memsz, size)) {
		err("%s: a segment at 0x%llx-0x%llx does not fit in %llu MiB of guest memory (see --mem)",
		    k->path, (unsigned long long)paddr,
		    (unsigned long long)(paddr + memsz),
		    (unsigned long long)(size / MIB));
		return -1;
	}
	if (overlaps(paddr, memsz, BIOS_START, HIGH_RAM_START - BIOS_START)) {
		err("%s: a segment at 0x%llx-0x%llx overlaps the BIOS area 0x%x-0x%x (ACPI tables)",
		    k->path, (unsigned long long)paddr,
		    (unsigned long long)(paddr + memsz), BIOS_START,
		    (unsigned int)HIGH_RAM_START - 1);
		return -1;
	}
	if (overlaps(paddr, memsz, 0, MB_STACK_TOP)) {
		err("%s: a segment at 0x%llx-0x%llx overlaps the launcher's boot data below 0x%x",
		    k->path, (unsigned long long)paddr,
		    (unsigned long long)(paddr + memsz), MB_STACK_TOP);
		return -1;
	}
	memcpy(mem + paddr, k->data + off, filesz);
	memset(mem + paddr + filesz, 0, memsz - filesz);
	if (paddr + memsz > *kernel_end)
		*kernel_end = paddr + memsz;
	return 0;
}

static int mb_load_elf(uint8_t *mem, uint64_t size, const struct file_buf *k,
		       uint32_t *entry, uint64_t *kernel_end)
{
	const uint8_t *e = k->data;
	uint32_t phoff, i, nloaded = 0;
	uint16_t phentsize, phnum;

	if (k->size < 52 || memcmp(e, "\177ELF", 4)) {
		err("%s: Multiboot header without the a.out kludge, but not an ELF file",
		    k->path);
		return -1;
	}
	if (e[4] != 1 || e[5] != 1 || get16(e + 18) != 3) {
		err("%s: not a little-endian ELF32 i386 file (Multiboot v1 kernels are)",
		    k->path);
		return -1;
	}
	phoff = get32(e + 28);
	phentsize = get16(e + 42);
	phnum = get16(e + 44);
	if (phentsize < 32 || (uint64_t)phoff + (uint64_t)phnum * phentsize >
			      k->size) {
		err("%s: truncated: the ELF program headers are beyond the end of the file",
		    k->path);
		return -1;
	}
	for (i = 0; i < phnum; i++) {
		const uint8_t *ph = e + phoff + i * phentsize;

		if (get32(ph) != 1)		/* PT_LOAD */
			continue;
		if (mb_load(mem, size, k, get32(ph + 12), get32(ph + 4),
			    get32(ph + 16), get32(ph + 20), kernel_end))
			return -1;
		nloaded++;
	}
	if (!nloaded) {
		err("%s: no loadable ELF segments", k->path);
		return -1;
	}
	*entry = get32(e + 24);
	return 0;
}

static int mb_load_aout(uint8_t *mem, uint64_t size, const struct file_buf *k,
			uint64_t hdr, uint32_t *entry, uint64_t *kernel_end)
{
	const uint8_t *h = k->data + hdr;
	uint32_t header_addr, load_addr, load_end, bss_end;
	uint64_t off, filesz, memsz;

	if (hdr + 32 > k->size) {
		err("%s: truncated Multiboot header", k->path);
		return -1;
	}
	header_addr = get32(h + 12);
	load_addr = get32(h + 16);
	load_end = get32(h + 20);
	bss_end = get32(h + 24);
	if (load_addr > header_addr || header_addr - load_addr > hdr ||
	    (load_end && load_end < load_addr) ||
	    (bss_end && bss_end < (load_end ? load_end : load_addr))) {
		err("%s: inconsistent Multiboot address fields", k->path);
		return -1;
	}
	off = hdr - (header_addr - load_addr);
	filesz = load_end ? load_end - load_addr : k->size - off;
	memsz = bss_end ? bss_end - load_addr : filesz;
	if (mb_load(mem, size, k, load_addr, off, filesz, memsz, kernel_end))
		return -1;
	*entry = get32(h + 28);
	return 0;
}

static void mb_mmap_entry(uint8_t **p, uint64_t base, uint64_t len,
			  uint32_t type)
{
	put32(*p, 20);			/* size of the rest */
	put64(*p + 4, base);
	put64(*p + 12, len);
	put32(*p + 20, type);
	*p += 24;
}

static int boot_multiboot(uint8_t *mem, uint64_t size, const struct boot_args *a,
			  const struct file_buf *k, uint64_t hdr,
			  struct kestrel_regs *r, struct kestrel_sregs *s)
{
	uint32_t flags = get32(k->data + hdr + 4), entry;
	uint8_t *info = mem + MB_INFO, *p;
	uint64_t kernel_end = 0, upper_end, *gdt;
	size_t len = strlen(a->cmdline);
	struct file_buf initrd = { 0 };

	if (flags & 0xfff8) {
		err("%s: the Multiboot header requires features this loader lacks (flags 0x%x)",
		    k->path, flags);
		return -1;
	}
	if (len >= MB_CMDLINE_MAX - MB_CMDLINE) {
		err("--append: the command line is longer than %d bytes",
		    MB_CMDLINE_MAX - MB_CMDLINE - 1);
		return -1;
	}
	if (flags & MB_AOUT_KLUDGE) {
		if (mb_load_aout(mem, size, k, hdr, &entry, &kernel_end))
			return -1;
	} else if (mb_load_elf(mem, size, k, &entry, &kernel_end)) {
		return -1;
	}
	if (entry >= size) {
		err("%s: entry point 0x%x is outside guest memory", k->path,
		    entry);
		return -1;
	}

	memset(mem, 0, MB_AREA_END);
	memcpy(mem + MB_CMDLINE, a->cmdline, len + 1);
	strcpy((char *)mem + MB_NAME, "kestrel");
	/* upper memory is contiguous from 1 MiB: to the RAM end or 4 GiB */
	upper_end = size < 4 * GIB ? size : 4 * GIB;
	put32(info + 0, MBI_MEMORY | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME);
	put32(info + 4, LOW_RAM_END / KIB);
	put32(info + 8, (upper_end - HIGH_RAM_START) / KIB);
	put32(info + 16, MB_CMDLINE);
	put32(info + 64, MB_NAME);

	p = mem + MB_MMAP;
	mb_mmap_entry(&p, 0, LOW_RAM_END, 1);
	mb_mmap_entry(&p, LOW_RAM_END, 0xa0000 - LOW_RAM_END, 2);
	mb_mmap_entry(&p, BIOS_START, HIGH_RAM_START - BIOS_START, 2);
	if (size > HIGH_RAM_START)
		mb_mmap_entry(&p, HIGH_RAM_START, size - HIGH_RAM_START, 1);
	put32(info + 44, p - (mem + MB_MMAP));
	put32(info + 48, MB_MMAP);

	/* --initrd becomes the one module, page aligned after the kernel */
	if (a->initrd) {
		uint64_t at = (kernel_end + 0xfff) & ~0xfffULL;

		if (read_whole(a->initrd, &initrd))
			return -1;
		if (!fits(at, initrd.size, upper_end)) {
			err("%s: %llu bytes at 0x%llx do not fit in guest memory below %llu MiB (see --mem)",
			    a->initrd, (unsigned long long)initrd.size,
			    (unsigned long long)at,
			    (unsigned long long)(upper_end / MIB));
			free(initrd.data);
			return -1;
		}
		memcpy(mem + at, initrd.data, initrd.size);
		free(initrd.data);
		put32(mem + MB_MODS, at);
		put32(mem + MB_MODS + 4, at + initrd.size);
		put32(mem + MB_MODS + 8, MB_NAME);
		put32(info + 0, get32(info) | MBI_MODS);
		put32(info + 20, 1);
		put32(info + 24, MB_MODS);
	}

	/* found by scanning the BIOS area, as the specification says */
	acpi_build(mem, size, a->ncpus);

	/* The OS must load its own GDT; ours is valid until it does. */
	gdt = (uint64_t *)(mem + MB_GDT);
	gdt[1] = GDT_CODE32;
	gdt[2] = GDT_DATA;
	flat_segment(&s->cs, 0x08, 0xb, false);
	flat_segment(&s->ds, 0x10, 0x3, false);
	s->es = s->fs = s->gs = s->ss = s->ds;
	s->gdt.base = MB_GDT;
	s->gdt.limit = 3 * 8 - 1;
	s->cr0 = X86_CR0_PE | X86_CR0_ET;
	s->cr3 = s->cr4 = s->efer = 0;
	memset(r, 0, sizeof(*r));
	r->rflags = 0x2;		/* IF = VM = 0 */
	r->rip = entry;
	r->rax = MB_BOOT_MAGIC;
	r->rbx = MB_INFO;
	r->rsp = MB_STACK_TOP;
	if (verbose)
		err("Multiboot kernel: entry 0x%x, loaded up to 0x%llx", entry,
		    (unsigned long long)kernel_end);
	return 0;
}

/* ---- Linux bzImage, 64-bit boot protocol ------------------------------ */

/* Offsets in the setup header (and so in boot_params) */
#define HDR_SETUP_SECTS		0x1f1
#define HDR_BOOT_FLAG		0x1fe
#define HDR_JUMP		0x200
#define HDR_HEADER		0x202
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21c
#define HDR_HEAP_END_PTR	0x224
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22c
#define HDR_KERNEL_ALIGNMENT	0x230
#define HDR_RELOCATABLE		0x234
#define HDR_XLOADFLAGS		0x236
#define HDR_CMDLINE_SIZE	0x238
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260

#define BP_ACPI_RSDP_ADDR	0x070
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_E820_TABLE		0x2d0

#define LOADED_HIGH		(1U << 0)
#define CAN_USE_HEAP		(1U << 7)
#define XLF_KERNEL_64		(1U << 0)

#define E820_RAM		1
#define E820_RESERVED		2

/* Below 640 KiB: GDT, zero page, page tables, command line; stack below */
#define LX_STACK_TOP		0x6000
#define LX_GDT			0x6000
#define LX_BOOT_PARAMS		0x7000
#define LX_PML4			0x9000
#define LX_PDPT			0xa000
#define LX_PD			0xb000		/* 4 pages: 4 GiB */
#define LX_CMDLINE		0x20000
#define LX_CMDLINE_MAX		0x10000
#define LX_MIN_MEM		(2 * MIB)

static void e820_add(uint8_t *bp, uint64_t addr, uint64_t len, uint32_t type)
{
	uint8_t *e = bp + BP_E820_TABLE + 20 * bp[BP_E820_ENTRIES]++;

	put64(e, addr);
	put64(e + 8, len);
	put32(e + 16, type);
}

/* Identity map the first 4 GiB with 2 MiB pages, and the boot GDT. */
static void lx_build_tables(uint8_t *mem)
{
	uint64_t *gdt = (uint64_t *)(mem + LX_GDT);
	uint64_t *pml4 = (uint64_t *)(mem + LX_PML4);
	uint64_t *pdpt = (uint64_t *)(mem + LX_PDPT);
	uint64_t *pd = (uint64_t *)(mem + LX_PD);
	int i;

	memset(mem + LX_GDT, 0, 0x1000);
	gdt[2] = GDT_CODE64;		/* __BOOT_CS = 0x10 */
	gdt[3] = GDT_DATA;		/* __BOOT_DS = 0x18 */
	memset(pml4, 0, 0x1000);
	memset(pdpt, 0, 0x1000);
	pml4[0] = LX_PDPT | 0x3;
	for (i = 0; i < 4; i++)
		pdpt[i] = (LX_PD + i * 0x1000) | 0x3;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;	/* present, rw, 2M */
}

static int boot_bzimage(uint8_t *mem, uint64_t size, const struct boot_args *a,
			const struct file_buf *k, struct kestrel_regs *r,
			struct kestrel_sregs *s)
{
	const uint8_t *h = k->data;
	uint8_t *bp = mem + LX_BOOT_PARAMS;
	uint16_t version = get16(h + HDR_VERSION);
	uint64_t setup_size, load, kernel_size, init_size, hdr_end;
	uint64_t cmdline_max, len = strlen(a->cmdline);
	unsigned int setup_sects = h[HDR_SETUP_SECTS];

	/* the setup code is at least 5 sectors: the whole header is there */
	if (k->size < 5 * 512) {
		err("%s: truncated: %llu bytes is less than a bzImage's setup code",
		    k->path, (unsigned long long)k->size);
		return -1;
	}
	if (version < 0x020c) {
		err("%s: Linux boot protocol %u.%02u is too old: 2.12 or later is needed for the 64-bit entry",
		    k->path, version >> 8, version & 0xff);
		return -1;
	}
	if (!(h[HDR_XLOADFLAGS] & XLF_KERNEL_64)) {
		err("%s: not a 64-bit kernel (XLF_KERNEL_64 is clear): 32-bit kernels are not supported",
		    k->path);
		return -1;
	}
	if (!(h[HDR_LOADFLAGS] & LOADED_HIGH)) {
		err("%s: a zImage (loaded at 0x10000): only bzImages are supported",
		    k->path);
		return -1;
	}
	if (size < LX_MIN_MEM) {
		err("--mem: a Linux kernel needs at least %llu MiB",
		    LX_MIN_MEM / MIB);
		return -1;
	}
	setup_size = ((setup_sects ? setup_sects : 4) + 1) * 512ULL;
	hdr_end = HDR_HEADER + h[HDR_JUMP + 1];	/* the jump skips the header */
	if (setup_size >= k->size || hdr_end > setup_size) {
		err("%s: truncated: the setup code is %llu bytes, the file %llu",
		    k->path, (unsigned long long)setup_size,
		    (unsigned long long)k->size);
		return -1;
	}
	kernel_size = k->size - setup_size;
	init_size = get32(h + HDR_INIT_SIZE);
	if (init_size < kernel_size)
		init_size = kernel_size;
	/* A relocatable kernel could go elsewhere; its preference is fine. */
	load = get64(h + HDR_PREF_ADDRESS);
	if (!load)
		load = HIGH_RAM_START;
	if (!fits(load, init_size, size)) {
		err("%s: the kernel needs 0x%llx-0x%llx (%llu MiB) but the guest has %llu MiB (see --mem)",
		    k->path, (unsigned long long)load,
		    (unsigned long long)(load + init_size),
		    (unsigned long long)((load + init_size + MIB - 1) / MIB),
		    (unsigned long long)(size / MIB));
		return -1;
	}
	cmdline_max = version >= 0x0206 ? get32(h + HDR_CMDLINE_SIZE) : 255;
	if (cmdline_max >= LX_CMDLINE_MAX)
		cmdline_max = LX_CMDLINE_MAX - 1;
	if (len > cmdline_max) {
		err("--append: the command line is %llu bytes, the kernel takes at most %llu",
		    (unsigned long long)len, (unsigned long long)cmdline_max);
		return -1;
	}

	memcpy(mem + load, k->data + setup_size, kernel_size);

	/* boot_params: zero, then the setup header as the file has it */
	memset(bp, 0, 0x1000);
	memcpy(bp + HDR_SETUP_SECTS, h + HDR_SETUP_SECTS,
	       hdr_end - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = 0xff;		/* undefined loader */
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	put16(bp + HDR_HEAP_END_PTR, 0xfe00 - 0x200);
	memcpy(mem + LX_CMDLINE, a->cmdline, strlen(a->cmdline));
	put32(bp + HDR_CMD_LINE_PTR, LX_CMDLINE);
	put32(bp + BP_EXT_CMD_LINE_PTR, 0);
	/* no scan of the BIOS area needed: the RSDP's address, directly */
	put64(bp + BP_ACPI_RSDP_ADDR, acpi_build(mem, size, a->ncpus));

	e820_add(bp, 0, LOW_RAM_END, E820_RAM);
	e820_add(bp, LOW_RAM_END, 0xa0000 - LOW_RAM_END, E820_RESERVED);
	e820_add(bp, BIOS_START, HIGH_RAM_START - BIOS_START, E820_RESERVED);
	e820_add(bp, HIGH_RAM_START, size - HIGH_RAM_START, E820_RAM);

	/* the initrd goes as high as the kernel allows, page aligned */
	if (a->initrd) {
		struct file_buf initrd;
		uint64_t limit = get32(h + HDR_INITRD_ADDR_MAX) + 1ULL, at;

		if (read_whole(a->initrd, &initrd))
			return -1;
		if (limit > size)
			limit = size;
		at = initrd.size <= limit ? (limit - initrd.size) & ~0xfffULL : 0;
		if (at < load + init_size) {
			err("%s: %llu bytes do not fit between the kernel's end 0x%llx and 0x%llx (the RAM end or the kernel's initrd_addr_max; see --mem)",
			    a->initrd, (unsigned long long)initrd.size,
			    (unsigned long long)(load + init_size),
			    (unsigned long long)limit);
			free(initrd.data);
			return -1;
		}
		memcpy(mem + at, initrd.data, initrd.size);
		put32(bp + HDR_RAMDISK_IMAGE, at);
		put32(bp + HDR_RAMDISK_SIZE, initrd.size);
		put32(bp + BP_EXT_RAMDISK_IMAGE, 0);
		put32(bp + BP_EXT_RAMDISK_SIZE, 0);
		free(initrd.data);
	}

	lx_build_tables(mem);
	flat_segment(&s->cs, 0x10, 0xb, true);
	flat_segment(&s->ds, 0x18, 0x3, false);
	s->es = s->fs = s->gs = s->ss = s->ds;
	s->gdt.base = LX_GDT;
	s->gdt.limit = 4 * 8 - 1;
	s->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	s->cr3 = LX_PML4;
	s->cr4 = X86_CR4_PAE;
	s->efer = X86_EFER_LME | X86_EFER_LMA;
	memset(r, 0, sizeof(*r));
	r->rflags = 0x2;		/* interrupts off */
	r->rip = load + 0x200;		/* the 64-bit entry point */
	r->rsi = LX_BOOT_PARAMS;
	r->rsp = LX_STACK_TOP;
	if (verbose)
		err("Linux boot protocol %u.%02u: kernel at 0x%llx (%llu bytes, init_size 0x%llx), entry 0x%llx",
		    version >> 8, version & 0xff, (unsigned long long)load,
		    (unsigned long long)kernel_size,
		    (unsigned long long)init_size,
		    (unsigned long long)r->rip);
	return 0;
}

/* ---- format detection ------------------------------------------------- */

int boot_kernel(uint8_t *mem, uint64_t size, const struct boot_args *a,
		struct kestrel_regs *r, struct kestrel_sregs *s)
{
	struct file_buf k;
	uint64_t hdr;
	int ret;

	if (read_whole(a->kernel, &k))
		return -1;
	if (k.size >= HDR_HEADER + 8 && get16(k.data + HDR_BOOT_FLAG) == 0xaa55 &&
	    !memcmp(k.data + HDR_HEADER, "HdrS", 4)) {
		ret = boot_bzimage(mem, size, a, &k, r, s);
	} else {
		ret = mb_find_header(&k, &hdr);
		if (ret == 0)
			ret = boot_multiboot(mem, size, a, &k, hdr, r, s);
		else if (ret > 0) {
			if (k.size >= 4 && !memcmp(k.data, "\177ELF", 4))
				err("%s: an ELF file without a Multiboot header in its first 8 KiB: not a kernel this launcher can boot",
				    a->kernel);
			else
				err("%s: not a kernel: neither a Linux bzImage (no \"HdrS\" setup header) nor a Multiboot kernel (no 0x1BADB002 header in the first 8 KiB)",
				    a->kernel);
			ret = -1;
		}
	}
	free(k.data);
	return ret;
}
