; hello.asm: write one line to standard output, then exit. No C library and no dynamic loader:
; the program talks to the kernel directly with two system calls.
;   nasm -f elf64 hello.asm && ld -s -o hello hello.o
        global  _start
        section .text
_start: mov     eax, 1                  ; system call 1 is write(fd, buffer, length)
        mov     edi, 1                  ; fd 1: standard output
        lea     rsi, [rel msg]          ; the buffer
        mov     edx, len                ; its length
        syscall
        mov     eax, 60                 ; system call 60 is exit(status)
        xor     edi, edi                ; status 0
        syscall

        section .rodata
msg:    db      "Hello from a few bytes of assembly", 10   ; 10 is the newline
len     equ     $ - msg
