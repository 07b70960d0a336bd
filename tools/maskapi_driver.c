/* Writes random rleFrPoly / rleFrBbox / rleMerge / rleToBbox / rleArea / rleIou / bbIou / rleToString cases computed by
 * pycocotools' maskApi.c, for `DiffEgg.Bench maskapi-check FILE`. Build against a cocoapi checkout:
 *   gcc -O2 -o maskapi_driver tools/maskapi_driver.c $COCOAPI/common/maskApi.c -I$COCOAPI/common -lm
 *   ./maskapi_driver 3000 60 > cases.txt      # N cases, image sides up to 60
 */
#include "maskApi.h"
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
static unsigned long long st = 88172645463325252ULL;
static double rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (st >> 11) * (1.0 / 9007199254740992.0); }
static void gen(double *xy, int k, int h, int w, int mode) {
  for (int j = 0; j < k; j++) {
    double x = -2 + rnd() * (w + 4), y = -2 + rnd() * (h + 4);
    if (mode == 1) { x = floor(x * 10) / 10; y = floor(y * 10) / 10; }
    if (mode == 2) { x = floor(x * 2) / 2; y = floor(y * 2) / 2; }
    if (j > 0 && rnd() < 0.05) { x = xy[2*j-2]; y = xy[2*j-1]; }
    xy[2*j] = x; xy[2*j+1] = y;
  }
}
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2000;
  double xy1[64], xy2[64];
  for (int c = 0; c < n; c++) {
    int mx = argc > 2 ? atoi(argv[2]) : 60; int h = 1 + (int)(rnd() * mx), w = 1 + (int)(rnd() * mx);
    int k1 = 3 + (int)(rnd() * 12), k2 = 3 + (int)(rnd() * 12), mode = (int)(rnd() * 3);
    gen(xy1, k1, h, w, mode); gen(xy2, k2, h, w, mode);
    RLE R[2], U, I;
    rleFrPoly(&R[0], xy1, k1, h, w); rleFrPoly(&R[1], xy2, k2, h, w);
    rleMerge(R, &U, 2, 0); rleMerge(R, &I, 2, 1);
    double bb[8], o0, o1, b0, b1; byte cr0 = 0, cr1 = 1; uint area;
    rleToBbox(R, bb, 2); rleArea(R, 1, &area);
    rleIou(&R[0], &R[1], 1, 1, &cr0, &o0); rleIou(&R[0], &R[1], 1, 1, &cr1, &o1);
    bbIou(bb, bb + 4, 1, 1, &cr0, &b0); bbIou(bb, bb + 4, 1, 1, &cr1, &b1);
    RLE B; double box[4] = { xy1[0], xy1[1], fabs(xy1[2] - xy1[0]), fabs(xy1[3] - xy1[1]) };
    rleFrBbox(&B, box, h, w, 1);
    char *s0 = rleToString(&R[0]), *s1 = rleToString(&R[1]), *su = rleToString(&U), *si = rleToString(&I), *sb = rleToString(&B);
    printf("%d %d|%d", h, w, k1); for (int j = 0; j < 2*k1; j++) printf(" %.17g", xy1[j]);
    printf("|%d", k2); for (int j = 0; j < 2*k2; j++) printf(" %.17g", xy2[j]);
    printf("|%.17g %.17g %.17g %.17g", box[0], box[1], box[2], box[3]);
    printf("|%s|%s|%s|%s|%s|%.17g %.17g %.17g %.17g|%u|%.17g|%.17g|%.17g|%.17g\n", s0, s1, su, si, sb, bb[0], bb[1], bb[2], bb[3], area, o0, o1, b0, b1);
    free(s0); free(s1); free(su); free(si); free(sb); rleFree(&R[0]); rleFree(&R[1]); rleFree(&U); rleFree(&I); rleFree(&B);
  }
  return 0;
}
