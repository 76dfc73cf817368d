/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The backend ops on the exit path, bound as static calls (x86.h): the
 * includer defines KESTREL_X86_CALL(op); this list undefines it.  No
 * include guard: it is meant to be included once per use.
 */
KESTREL_X86_CALL(vcpu_reset);
KESTREL_X86_CALL(get_sregs);
KESTREL_X86_CALL(set_sregs);
KESTREL_X86_CALL(get_cr);
KESTREL_X86_CALL(set_cr4);
KESTREL_X86_CALL(get_efer);
KESTREL_X86_CALL(set_efer);
KESTREL_X86_CALL(get_pat);
KESTREL_X86_CALL(set_pat);
KESTREL_X86_CALL(get_seg);
KESTREL_X86_CALL(set_cr2);
KESTREL_X86_CALL(set_cr8);
KESTREL_X86_CALL(set_tsc_offset);
KESTREL_X86_CALL(interrupt_allowed);
KESTREL_X86_CALL(inject_irq);
KESTREL_X86_CALL(set_irq_window);
KESTREL_X86_CALL(cancel_exception);
KESTREL_X86_CALL(prepare_run);
KESTREL_X86_CALL(run);

#undef KESTREL_X86_CALL
