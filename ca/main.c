/* placeholder */
typedef int camtrust_placeholder_;
int main(void){return 0;}
