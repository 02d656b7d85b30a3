/* A small program to build inside an image. Change the greeting, rebuild, and watch the cache. */
#include <stdio.h>

int main(void) {
    printf("Hello from a program compiled in a Docker build!\n");
    return 0;
}
