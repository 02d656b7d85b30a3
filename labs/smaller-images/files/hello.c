/* The same small program: built here into an image that holds nothing else. */
#include <stdio.h>

int main(void) {
    printf("Hello from an image with one file in it!\n");
    return 0;
}
