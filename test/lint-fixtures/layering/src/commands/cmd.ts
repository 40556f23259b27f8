export const flag = 1;
